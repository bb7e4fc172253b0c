#include "keys/slicing.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using namespace tether::keys;

// Placement depends on these numbers: a node and its peers must agree on the slice of
// every key, across versions and machines. If one of these tests fails, the hash
// function or its seed changed, and every existing cluster would reshuffle its data.

TEST_CASE("key_hash of the empty string is the published XXH3-64 value",
          "[slicing]") {
  CHECK(key_hash("") == 0x2D06800538D394C2ull);
}

TEST_CASE("key_hash is pinned for known canonical keys", "[slicing]") {
  CHECK(key_hash("up") == 0xDD298FF33252F164ull);
  CHECK(key_hash(R"(http_requests_total{code="200",method="GET"})")
        == 0xD24D9A7DFC92122Bull);
  CHECK(key_hash(R"(process_cpu_seconds_total{instance="a:1",job="api"})")
        == 0xDF3D00B16DB30612ull);
  CHECK(key_hash("node_load1") == 0x636CEF53128B7BEBull);
  CHECK(key_hash(R"(queue_depth{queue="line\nbreak",zone="eu-1"})")
        == 0x0CB115AEBE0125A8ull);
}

TEST_CASE("slices match the examples of the protocol document", "[slicing]") {
  // docs/protocol.md, section 12.3.
  CHECK(key_hash("up") == 0xdd298ff33252f164ull);
  CHECK(slice_of(key_hash("up"), 1024) == 356);
  CHECK(slice_of(key_hash(R"(room_temp_celsius{room="lab"})"), 1024) == 416);
  CHECK(slice_of(key_hash(R"(http_requests_total{code="200",method="GET"})"), 1024)
        == 555);
}

TEST_CASE("key_hash depends on every byte of the key", "[slicing]") {
  std::string key = R"(http_requests_total{code="200",method="GET"})";
  auto h = key_hash(key);
  for (size_t i = 0; i < key.size(); ++i) {
    auto changed = key;
    changed[i] = static_cast<char>(changed[i] ^ 0x01);
    INFO("byte " << i);
    CHECK(key_hash(changed) != h);
  }
  // Views of the same text in different buffers hash the same.
  std::string copy = "xx" + key + "yy";
  CHECK(key_hash(std::string_view{copy}.substr(2, key.size())) == h);
}

TEST_CASE("slice_of is the hash modulo the slice count", "[slicing]") {
  CHECK(slice_of(0, 1024) == 0);
  CHECK(slice_of(1023, 1024) == 1023);
  CHECK(slice_of(1024, 1024) == 0);
  CHECK(slice_of(0xFFFFFFFFFFFFFFFFull, 1024) == 1023);
  CHECK(slice_of(0xFFFFFFFFFFFFFFFFull, 1000) == 0xFFFFFFFFFFFFFFFFull % 1000);
  CHECK(slice_of(12345, 1) == 0);
  // The pinned key lands in a pinned slice.
  CHECK(slice_of(key_hash("up"), 1024) == (0xDD298FF33252F164ull & 1023));
}

TEST_CASE("slice_of spreads keys evenly over the slices", "[slicing]") {
  constexpr uint32_t slices = 1024;
  constexpr int keys = 10000; // about 9.8 per slice
  std::vector<int> counts(slices, 0);
  for (int i = 0; i < keys; ++i) {
    auto key = "requests_total{id=\"" + std::to_string(i) + "\"}";
    auto s = slice_of(key_hash(key), slices);
    REQUIRE(s < slices);
    ++counts[s];
  }
  auto max = *std::max_element(counts.begin(), counts.end());
  auto empty = std::count(counts.begin(), counts.end(), 0);
  // Generous bounds: a uniform hash puts at most ~25 keys in any slice here and
  // leaves an empty slice only rarely; a poor hash or a broken modulo does not.
  CHECK(max <= 30);
  CHECK(empty <= 5);
}
