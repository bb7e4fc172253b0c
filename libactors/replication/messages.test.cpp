#include "replication/messages.hpp"

#include <limits>
#include <random>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <catch2/catch.hpp>

using namespace tether;
using namespace tether::replication;

namespace {

bool same(const replica_item& a, const replica_item& b) {
  if (a.windows.size() != b.windows.size())
    return false;
  for (size_t i = 0; i < a.windows.size(); ++i)
    if (a.windows[i].window_ms != b.windows[i].window_ms
        || a.windows[i].start != b.windows[i].start)
      return false;
  return a.slice == b.slice && a.epoch == b.epoch && a.seq == b.seq
         && a.prev_epoch == b.prev_epoch && a.kind == b.kind && a.now_ms == b.now_ms
         && a.write == b.write && a.range == b.range;
}

std::vector<replica_item> example_items(std::mt19937_64& rng, size_t n) {
  std::vector<replica_item> xs;
  int64_t clock = 1'700'000'000'000;
  for (size_t i = 0; i < n; ++i) {
    replica_item x;
    x.slice = static_cast<uint32_t>(rng() % 1024);
    x.epoch = 1 + rng() % 3;
    x.seq = rng() % 5'000'000;
    x.prev_epoch = rng() % 4 == 0 ? x.epoch - 1 : x.epoch;
    x.kind = static_cast<item_kind>(rng() % 3);
    if (rng() % 3 == 0)
      clock += static_cast<int64_t>(rng() % 100) - 10;
    x.now_ms = clock;
    x.write = static_cast<uint32_t>(i / 10);
    x.range = static_cast<uint32_t>(i);
    if (x.kind == item_kind::close)
      x.windows = {{10000, clock - clock % 10000}, {60000, -5}};
    xs.push_back(x);
  }
  return xs;
}

} // namespace

TEST_CASE("a replica batch crosses CAF's serializers in its compact form",
          "[replication]") {
  std::mt19937_64 rng{3};
  replica_batch b;
  b.items = example_items(rng, 300);
  b.items.front().epoch = std::numeric_limits<uint64_t>::max();
  b.items.back().now_ms = std::numeric_limits<int64_t>::min();
  b.items.back().seq = std::numeric_limits<uint64_t>::max();
  b.commits = {{1, 2, 3}, {1023, 9, std::numeric_limits<uint64_t>::max()}};
  series::shard_write w;
  w.producer = "p";
  w.sequence = 4;
  w.near_token = 77;
  b.writes.push_back(w);
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  REQUIRE(!sink(b));
  // An item took 56 bytes as a fixed struct.
  CHECK(buf.size() < 300 * 16);
  replica_batch out;
  caf::binary_deserializer source{nullptr, buf};
  REQUIRE(!source(out));
  REQUIRE(out.items.size() == b.items.size());
  for (size_t i = 0; i < b.items.size(); ++i)
    CHECK(same(out.items[i], b.items[i]));
  REQUIRE(out.commits.size() == 2);
  CHECK(out.commits[1].slice == 1023);
  CHECK(out.commits[1].epoch == 9);
  CHECK(out.commits[1].seq == std::numeric_limits<uint64_t>::max());
  REQUIRE(out.writes.size() == 1);
  CHECK(out.writes[0].producer == "p");
  CHECK(out.writes[0].near_token == 77);
  CHECK(out.nears.empty());
}

TEST_CASE("a near answer crosses CAF's serializers with its requester",
          "[replication]") {
  // The requester is an actor (of this node here), which CAF's serializers write
  // with their actor system.
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto requester = sys.spawn([](caf::event_based_actor*) -> caf::behavior {
    return {[](int) {}};
  });
  replica_batch b;
  near_ack n;
  n.to = requester;
  n.token = std::numeric_limits<uint64_t>::max();
  n.items = {0, 7, 299};
  n.result.applied = 12;
  n.result.late = 1;
  n.result.duplicate_ranges = 2;
  b.nears.push_back(n);
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  REQUIRE(!sink(b));
  replica_batch out;
  caf::binary_deserializer source{sys, buf};
  REQUIRE(!source(out));
  REQUIRE(out.nears.size() == 1);
  CHECK(out.nears[0].to == requester);
  CHECK(out.nears[0].token == std::numeric_limits<uint64_t>::max());
  CHECK(out.nears[0].items == std::vector<uint32_t>{0, 7, 299});
  CHECK(out.nears[0].result.applied == 12);
  CHECK(out.nears[0].result.late == 1);
  CHECK(out.nears[0].result.duplicate_ranges == 2);
  caf::anon_send_exit(requester, caf::exit_reason::user_shutdown);
}

TEST_CASE("acks cross in their compact form", "[replication]") {
  replica_acks a;
  a.xs = {{5, ack_code::ok, 2, 1000, 0},
          {6, ack_code::gap, 3, 7, 8},
          {7, ack_code::ahead, std::numeric_limits<uint64_t>::max(), 0, 1}};
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  REQUIRE(!sink(a));
  replica_acks out;
  caf::binary_deserializer source{nullptr, buf};
  REQUIRE(!source(out));
  REQUIRE(out.xs.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(out.xs[i].slice == a.xs[i].slice);
    CHECK(out.xs[i].code == a.xs[i].code);
    CHECK(out.xs[i].epoch == a.xs[i].epoch);
    CHECK(out.xs[i].seq == a.xs[i].seq);
    CHECK(out.xs[i].item == a.xs[i].item);
  }
}

TEST_CASE("malformed item, commit and ack blocks are refused", "[replication]") {
  std::mt19937_64 rng{9};
  auto items = example_items(rng, 40);
  std::string bytes;
  encode_items(items, bytes);
  std::vector<replica_item> out;
  REQUIRE(decode_items(bytes, out));
  for (size_t n = 0; n < bytes.size(); ++n)
    CHECK_FALSE(decode_items(bytes.substr(0, n), out));
  std::string bad = bytes;
  bad[1] = static_cast<char>(0xff); // the first item's flags: unknown bits
  CHECK_FALSE(decode_items(bad, out));
  std::string acks;
  encode_acks({{1, ack_code::ok, 1, 1, 1}}, acks);
  acks[2] = 9; // no such ack code
  std::vector<replica_ack> xs;
  CHECK_FALSE(decode_acks(acks, xs));
  std::vector<commit_note> cs;
  CHECK_FALSE(decode_commits(std::string{"\x05\x01", 2}, cs));
  for (int i = 0; i < 2000; ++i) {
    auto garbage = bytes;
    for (int e = 0; e < 3; ++e)
      garbage[rng() % garbage.size()] = static_cast<char>(rng());
    (void) decode_items(garbage, out);
  }
}
