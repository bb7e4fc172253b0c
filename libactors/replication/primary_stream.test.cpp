#include "replication/primary_stream.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <catch2/catch.hpp>

using namespace tether;
using tether::replication::primary_stream;
using link_state = primary_stream::link;

namespace {

caf::behavior idle_actor() {
  return {[](int) {}};
}

/// A stream of slice 7 at epoch 1, quorum 2, with followers "a" and "b", both
/// streamed to (one stand-in actor is the shard of both).
struct stream_fixture {
  stream_fixture()
    : sys(cfg), stream(7, 1, series::stream_position{1, 0}, 0, 2) {
    shard = sys.spawn(idle_actor);
    stream.set_followers({"a", "b"}, 2);
    for (auto& f : stream.followers()) {
      f.shard = shard;
      f.state = link_state::live;
    }
  }

  ~stream_fixture() {
    caf::anon_send_exit(shard, caf::exit_reason::user_shutdown);
  }

  primary_stream::follower& f(const char* name) {
    return *stream.find(name);
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::actor shard;
  primary_stream stream;
};

} // namespace

TEST_CASE("the write quorum is a majority of the replica set or of RF",
          "[replication]") {
  using replication::write_quorum;
  CHECK(write_quorum(1, 1) == 1);
  CHECK(write_quorum(2, 2) == 2);
  CHECK(write_quorum(3, 3) == 2);
  CHECK(write_quorum(2, 3) == 2); // RF 3 with one follower placed
  CHECK(write_quorum(1, 3) == 2); // RF 3 with no follower: nothing commits
  CHECK(write_quorum(5, 5) == 3);
}

TEST_CASE("items are numbered in order and carry the previous item's epoch",
          "[replication]") {
  primary_stream s{3, 4, series::stream_position{2, 10}, 10, 1};
  auto x = s.append(replication::item_kind::write, 100);
  CHECK(x.slice == 3);
  CHECK(x.epoch == 4);
  CHECK(x.seq == 11);
  CHECK(x.prev_epoch == 2);
  auto y = s.append(replication::item_kind::close, 200);
  CHECK(y.seq == 12);
  CHECK(y.prev_epoch == 4);
  CHECK(s.last() == series::stream_position{4, 12});
  // Quorum 1: everything is committed at once.
  CHECK(s.committed() == 12);
}

TEST_CASE_METHOD(stream_fixture, "the commit point follows the quorum's acks",
                 "[replication]") {
  std::vector<std::pair<uint64_t, bool>> calls;
  for (int i = 0; i < 3; ++i) {
    auto it = stream.append(replication::item_kind::write, 0);
    stream.wait(it.seq, false, [&calls, s = it.seq](bool ok) {
      calls.emplace_back(s, ok);
    });
  }
  CHECK(stream.committed() == 0);
  CHECK(calls.empty());
  stream.acked(f("b"), 2); // quorum 2: the primary and b have 1 and 2
  CHECK(stream.committed() == 2);
  REQUIRE(calls.size() == 2);
  CHECK(calls[0] == std::make_pair(uint64_t{1}, true));
  CHECK(calls[1] == std::make_pair(uint64_t{2}, true));
  stream.acked(f("a"), 1); // behind b: changes nothing
  CHECK(stream.committed() == 2);
  stream.acked(f("a"), 3);
  CHECK(stream.committed() == 3);
  CHECK(calls.size() == 3);
  // Waiting for a committed sequence answers at once.
  bool now = false;
  stream.wait(3, false, [&](bool ok) { now = ok; });
  CHECK(now);
}

TEST_CASE_METHOD(stream_fixture,
                 "a stream that loses its quorum fails the waiting writes, not "
                 "the window emissions",
                 "[replication]") {
  stream.lost(f("a"));
  CHECK(stream.can_reach_quorum()); // the primary and b
  stream.lost(f("b"));
  CHECK_FALSE(stream.can_reach_quorum());
  CHECK_FALSE(stream.writable());
  auto it = stream.append(replication::item_kind::close, 0);
  int emitted = 0;
  int refused = 0;
  stream.wait(it.seq, true, [&](bool ok) { emitted += ok ? 1 : -100; });
  stream.wait(it.seq, false, [&](bool ok) { refused += ok ? -100 : 1; });
  CHECK(refused == 1); // at once: no quorum in reach
  CHECK(emitted == 0);
  stream.hold_marks(it.seq, {replication::window_ref{1000, 5000}});
  REQUIRE(stream.unconfirmed().size() == 1);
  CHECK(stream.unconfirmed()[0].seq == it.seq);
  // A follower that was seeded past the mark commits it: the emission goes out.
  stream.acked(f("a"), it.seq);
  CHECK(emitted == 1);
  CHECK(stream.unconfirmed().empty());
}

TEST_CASE_METHOD(stream_fixture, "a fenced stream acknowledges nothing",
                 "[replication]") {
  auto it = stream.append(replication::item_kind::write, 0);
  int failed = 0;
  stream.wait(it.seq, false, [&](bool ok) { failed += ok ? 0 : 1; });
  stream.fence(3);
  CHECK(failed == 1);
  CHECK(stream.fenced());
  CHECK(stream.fenced_by() == 3);
  CHECK_FALSE(stream.writable());
  stream.unfence();
  CHECK_FALSE(stream.fenced());
}

TEST_CASE_METHOD(stream_fixture,
                 "writes wait for a new primary's barrier; the replica set may "
                 "change",
                 "[replication]") {
  stream.hold_writes();
  CHECK(stream.awaiting_barrier());
  auto b = stream.append_barrier(0);
  CHECK_FALSE(stream.awaiting_barrier());
  CHECK(b.kind == replication::item_kind::barrier);
  stream.acked(f("a"), b.seq);
  CHECK(stream.committed() == b.seq);
  // Down to the primary alone: everything it holds is committed.
  auto w = stream.append(replication::item_kind::write, 0);
  stream.set_followers({}, 1);
  CHECK(stream.committed() == w.seq);
  CHECK(stream.followers().empty());
  // A new follower starts idle and acknowledged nothing.
  stream.set_followers({"c"}, 2);
  REQUIRE(stream.find("c") != nullptr);
  CHECK(stream.find("c")->state == link_state::idle);
  CHECK(stream.find("c")->acked == 0);
}

TEST_CASE("seeds of a follower that keeps failing back off from 200 ms to 1.6 s",
          "[replication]") {
  using tether::replication::primary_stream;
  CHECK(primary_stream::seed_retry_delay(1) == 200);
  CHECK(primary_stream::seed_retry_delay(2) == 400);
  CHECK(primary_stream::seed_retry_delay(3) == 800);
  CHECK(primary_stream::seed_retry_delay(4) == 1600);
  CHECK(primary_stream::seed_retry_delay(40) == 1600);
  primary_stream s{7, 1, {1, 0}, 0, 2};
  s.set_followers({"a", "b"}, 2);
  auto& f = s.followers()[0];
  f.state = primary_stream::link::live;
  s.retry_later(f, 1000);
  CHECK(f.state == primary_stream::link::idle);
  CHECK(f.retry_at == 1200);
  s.retry_later(f, 1200);
  CHECK(f.retry_at == 1600);
}
