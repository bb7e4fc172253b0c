#include "replication/follower_cursor.hpp"

#include <catch2/catch.hpp>

using namespace tether;
using tether::replication::follower_cursor;
using tether::replication::ack_code;

namespace {

replication::replica_item item(uint64_t epoch, uint64_t seq, uint64_t prev_epoch,
                          replication::item_kind kind = replication::item_kind::write) {
  replication::replica_item it;
  it.slice = 1;
  it.epoch = epoch;
  it.seq = seq;
  it.prev_epoch = prev_epoch;
  it.kind = kind;
  return it;
}

} // namespace

TEST_CASE("a follower applies the items that continue its position",
          "[replication]") {
  follower_cursor c;
  c.fence = 2;
  c.last = {2, 5};
  CHECK(c.admit(item(2, 6, 2), 2) == ack_code::ok);
  CHECK(c.admit(item(2, 7, 2), 2) == ack_code::gap); // one is missing
  CHECK(c.admit(item(2, 5, 2), 2) == ack_code::gap); // applied already
  CHECK(c.admit(item(3, 6, 1), 2) == ack_code::gap); // another history
  CHECK(c.admit(item(1, 6, 2), 2) == ack_code::stale);
  CHECK(c.admit(item(2, 6, 2), 3) == ack_code::stale); // a table knows epoch 3
  c.advance(item(3, 6, 2));
  CHECK(c.fence == 3);
  CHECK(c.last == series::stream_position{3, 6});
  CHECK(c.admit(item(2, 7, 3), 0) == ack_code::stale);
}

TEST_CASE("a follower tracks the close marks above the announced commit point",
          "[replication]") {
  follower_cursor c;
  c.last = {1, 0};
  auto mark = item(1, 1, 1, replication::item_kind::close);
  mark.windows = {replication::window_ref{1000, 10000}, replication::window_ref{60000, 0}};
  c.advance(mark);
  REQUIRE(c.unconfirmed.size() == 2);
  CHECK(c.unconfirmed[0].seq == 1);
  c.advance(item(1, 2, 1));
  c.commit(1);
  CHECK(c.unconfirmed.empty());
  CHECK(c.known_commit == 1);
  // A mark below the known commit point was emitted already.
  c.commit(4);
  auto late = item(1, 3, 1, replication::item_kind::close);
  late.windows = {replication::window_ref{1000, 11000}};
  c.advance(late);
  CHECK(c.unconfirmed.empty());
}

TEST_CASE("a seed may not take a replica back within one epoch", "[replication]") {
  follower_cursor c;
  c.fence = 1;
  c.last = {1, 57};
  // A primary that restarted empty at epoch 1.
  CHECK(c.admit_seed(1, {1, 0}, 1) == ack_code::ahead);
  // The same primary further on.
  CHECK(c.admit_seed(1, {1, 60}, 1) == ack_code::ok);
  // A new primary (epoch 2) that was elected with less: its history wins.
  CHECK(c.admit_seed(2, {1, 50}, 1) == ack_code::ok);
  // A seed older than what the replica or its table knows.
  CHECK(c.admit_seed(1, {1, 60}, 2) == ack_code::stale);
  series::slice_snapshot snap;
  snap.epoch = 2;
  snap.position = {2, 70};
  snap.committed = 65;
  snap.unconfirmed = {series::window_mark{68, 1000, 5000},
                      series::window_mark{64, 1000, 4000}};
  c.reset(snap);
  CHECK(c.fence == 2);
  CHECK(c.last == series::stream_position{2, 70});
  CHECK(c.known_commit == 65);
  REQUIRE(c.unconfirmed.size() == 1);
  CHECK(c.unconfirmed[0].seq == 68);
}
