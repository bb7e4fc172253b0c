#include "series/compact.hpp"

#include <limits>
#include <random>
#include <vector>

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include <catch2/catch.hpp>

#include "series/shard_write.hpp"

using namespace tether;
using namespace tether::series;

namespace {

shard_write example(std::mt19937_64& rng, size_t n) {
  shard_write w;
  w.producer = "tether-load-0a1b2c3d-2";
  w.sequence = rng();
  int64_t ts = 1'700'000'000'000;
  for (size_t i = 0; i < n; ++i) {
    wire::keyed_sample s;
    s.hash = rng();
    s.input_hash = i % 3 == 0 ? s.hash : rng();
    s.key_offset = static_cast<uint32_t>(w.keys.size());
    auto key = "m{k=\"" + std::to_string(rng() % 1000) + "\"}";
    w.keys += key;
    s.key_size = static_cast<uint32_t>(key.size());
    if (i % 5 == 4) // a key shared with an earlier sample
      s.key_offset = 0;
    s.slice = static_cast<uint32_t>(rng() % 65536);
    s.window_ms = i % 2 ? 10000 : 0;
    s.rule = static_cast<uint32_t>(i % 4);
    s.kind = static_cast<kind>(1 + i % 3);
    s.mode = i % 2 ? counter_mode::cumulative : counter_mode::delta;
    s.value = i == 7 ? -0.0 : static_cast<double>(rng() % 100000) / 7;
    ts += static_cast<int64_t>(rng() % 2000) - 1000;
    s.timestamp_ms = i == 9 ? 0 : ts;
    w.samples.push_back(s);
  }
  uint32_t at = 0;
  while (at < n) {
    auto len = std::min<uint32_t>(static_cast<uint32_t>(n) - at, 1 + rng() % 4);
    w.ranges.push_back(slice_range{static_cast<uint32_t>(rng() % 1024), 1 + rng() % 3,
                                   at, at + len});
    at += len;
  }
  return w;
}

bool same(const wire::keyed_sample& a, const wire::keyed_sample& b) {
  return a.hash == b.hash && a.input_hash == b.input_hash && a.key_offset == b.key_offset
         && a.key_size == b.key_size && a.slice == b.slice && a.window_ms == b.window_ms
         && a.rule == b.rule && a.kind == b.kind && a.mode == b.mode
         && std::memcmp(&a.value, &b.value, sizeof a.value) == 0
         && a.timestamp_ms == b.timestamp_ms;
}

bool same(const slice_range& a, const slice_range& b) {
  return a.slice == b.slice && a.epoch == b.epoch && a.begin == b.begin && a.end == b.end;
}

} // namespace

TEST_CASE("a shard write crosses CAF's serializers in its compact form", "[compact]") {
  std::mt19937_64 rng{11};
  for (size_t n : {0, 1, 2, 17, 1000}) {
    auto w = example(rng, n);
    std::vector<char> buf;
    caf::binary_serializer sink{nullptr, buf};
    REQUIRE(!sink(w));
    // Far less than the 56 bytes of a keyed sample's struct, plus its key.
    if (n == 1000)
      CHECK(buf.size() < w.keys.size() + n * 40);
    shard_write out;
    caf::binary_deserializer source{nullptr, buf};
    REQUIRE(!source(out));
    CHECK(out.producer == w.producer);
    CHECK(out.sequence == w.sequence);
    CHECK(out.keys == w.keys);
    REQUIRE(out.samples.size() == w.samples.size());
    for (size_t i = 0; i < n; ++i)
      CHECK(same(out.samples[i], w.samples[i]));
    REQUIRE(out.ranges.size() == w.ranges.size());
    for (size_t i = 0; i < w.ranges.size(); ++i)
      CHECK(same(out.ranges[i], w.ranges[i]));
  }
}

TEST_CASE("compact samples and ranges keep extreme values", "[compact]") {
  wire::keyed_sample s;
  s.hash = std::numeric_limits<uint64_t>::max();
  s.input_hash = 0;
  s.key_offset = std::numeric_limits<uint32_t>::max() - 5;
  s.key_size = 5;
  s.slice = std::numeric_limits<uint32_t>::max();
  s.window_ms = std::numeric_limits<uint32_t>::max();
  s.rule = std::numeric_limits<uint32_t>::max();
  s.kind = kind::histogram;
  s.value = std::numeric_limits<double>::max();
  s.timestamp_ms = std::numeric_limits<int64_t>::max();
  auto t = s;
  t.key_offset = 0;
  t.timestamp_ms = std::numeric_limits<int64_t>::min();
  std::vector<wire::keyed_sample> xs{s, t, s};
  std::string bytes;
  encode_samples(xs, bytes);
  std::vector<wire::keyed_sample> back;
  REQUIRE(decode_samples(bytes, back));
  REQUIRE(back.size() == 3);
  CHECK(same(back[0], s));
  CHECK(same(back[1], t));
  CHECK(same(back[2], s));

  std::vector<slice_range> rs{{7, std::numeric_limits<uint64_t>::max(), 0,
                               std::numeric_limits<uint32_t>::max()},
                              {1, 0, 5, 3}, // end before begin: kept as it was
                              {2, 9, 0, 0}};
  bytes.clear();
  encode_ranges(rs, bytes);
  std::vector<slice_range> rback;
  REQUIRE(decode_ranges(bytes, rback));
  REQUIRE(rback.size() == 3);
  for (size_t i = 0; i < 3; ++i)
    CHECK(same(rback[i], rs[i]));
}

TEST_CASE("malformed compact blocks are refused whole", "[compact]") {
  std::mt19937_64 rng{5};
  auto w = example(rng, 50);
  std::string bytes;
  encode_samples(w.samples, bytes);
  std::vector<wire::keyed_sample> out;
  SECTION("cut short anywhere") {
    for (size_t n = 0; n < bytes.size(); ++n)
      CHECK_FALSE(decode_samples(bytes.substr(0, n), out));
  }
  SECTION("trailing bytes") {
    CHECK_FALSE(decode_samples(bytes + "x", out));
  }
  SECTION("a count no bytes could hold allocates nothing") {
    std::string huge;
    compact::put_varint(huge, uint64_t{1} << 40);
    CHECK_FALSE(decode_samples(huge, out));
    CHECK(out.capacity() < 1000);
    std::vector<slice_range> rs;
    CHECK_FALSE(decode_ranges(huge, rs));
  }
  SECTION("random bytes never crash the reader") {
    for (int i = 0; i < 2000; ++i) {
      auto garbage = bytes;
      for (int e = 0; e < 3; ++e)
        garbage[rng() % garbage.size()] = static_cast<char>(rng());
      (void) decode_samples(garbage, out); // may or may not parse; must not crash
      std::vector<slice_range> rs;
      (void) decode_ranges(garbage, rs);
    }
  }
}
