#include "directory/election.hpp"

#include <catch2/catch.hpp>

using namespace tether;
using namespace tether::directory;

namespace {

/// Members a, b, c (indices 0, 1, 2); one slice per entry of `primaries`, each
/// followed by the other two members, at epoch 4.
assignment_table three_nodes(std::vector<int32_t> primaries) {
  assignment_table t;
  t.version = 10;
  t.replication_factor = 3;
  for (auto name : {"a", "b", "c"})
    t.members.push_back(member{name, "127.0.0.1:1", true});
  for (auto p : primaries) {
    slice_assignment a;
    a.primary = p;
    for (int32_t m = 0; m < 3; ++m)
      if (m != p)
        a.followers.push_back(m);
    a.epoch = 4;
    t.slices.push_back(a);
  }
  return t;
}

election_answer seeded(uint32_t slice, int32_t member, uint64_t epoch, uint64_t seq) {
  election_answer x;
  x.member = member;
  x.position.slice = slice;
  x.position.seeded = true;
  x.position.epoch = epoch;
  x.position.seq = seq;
  return x;
}

election_answer unseeded(uint32_t slice, int32_t member) {
  election_answer x;
  x.member = member;
  x.position.slice = slice;
  return x;
}

} // namespace

TEST_CASE("an election promotes the follower that applied the most",
          "[directory][election]") {
  auto t = three_nodes({0});
  auto plan = t; // the placement keeps a as primary: it is down, so not a candidate
  auto r = decide_election(t, plan, {0}, {seeded(0, 1, 4, 7), seeded(0, 2, 4, 9)}, 3);
  REQUIRE(r.elected == std::vector<uint32_t>{0});
  CHECK(t.slices[0].primary == 2);
  CHECK(t.slices[0].epoch == 6); // election_epoch: two above the table's
  CHECK_FALSE(t.slices[0].empty);
  // The failed primary stays a follower (restore_rf replaces it later).
  CHECK(std::count(t.slices[0].followers.begin(), t.slices[0].followers.end(), 0) == 1);
  CHECK(std::count(t.slices[0].followers.begin(), t.slices[0].followers.end(), 2) == 0);
  // A higher epoch beats a longer stream of an older one.
  auto u = three_nodes({0});
  decide_election(u, u, {0}, {seeded(0, 1, 5, 1), seeded(0, 2, 4, 90)}, 3);
  CHECK(u.slices[0].primary == 1);
}

TEST_CASE("an election waits for enough answers to cover every write quorum",
          "[directory][election]") {
  // RF 3: a write was acknowledged by the primary and one follower; with one
  // follower silent, the other may lack it. The slice keeps its primary and epoch.
  auto t = three_nodes({0});
  auto before = t.slices[0];
  auto r = decide_election(t, t, {0}, {seeded(0, 1, 4, 9)}, 3);
  CHECK(r.unresolved == std::vector<uint32_t>{0});
  CHECK(r.elected.empty());
  CHECK(t.slices[0].primary == before.primary);
  CHECK(t.slices[0].epoch == before.epoch);
  // An unseeded answer counts as an answer: that replica never acknowledged.
  auto u = three_nodes({0});
  r = decide_election(u, u, {0}, {seeded(0, 1, 4, 9), unseeded(0, 2)}, 3);
  CHECK(r.elected == std::vector<uint32_t>{0});
  CHECK(u.slices[0].primary == 1);
}

TEST_CASE("an election starts a slice empty only when no answering replica has state",
          "[directory][election]") {
  auto t = three_nodes({0});
  auto r = decide_election(t, t, {0}, {unseeded(0, 1), unseeded(0, 2)}, 3);
  CHECK(r.started_empty == std::vector<uint32_t>{0});
  CHECK(t.slices[0].empty);
  CHECK((t.slices[0].primary == 1 || t.slices[0].primary == 2));
  // One replica with state is enough to lead from it, however short its stream.
  auto u = three_nodes({0});
  r = decide_election(u, u, {0}, {unseeded(0, 1), seeded(0, 2, 1, 0)}, 3);
  CHECK(r.elected == std::vector<uint32_t>{0});
  CHECK(u.slices[0].primary == 2);
  CHECK_FALSE(u.slices[0].empty);
}

TEST_CASE("equally far replicas: the plan's choice, else the least loaded",
          "[directory][election]") {
  // Four slices led by a: both followers equally far everywhere.
  auto t = three_nodes({0, 0, 0, 0});
  std::vector<election_answer> answers;
  std::vector<uint32_t> slices{0, 1, 2, 3};
  for (auto s : slices) {
    answers.push_back(seeded(s, 1, 4, 3));
    answers.push_back(seeded(s, 2, 4, 3));
  }
  auto plan = t;
  plan.slices[3].primary = 2; // the placement prefers c for slice 3
  auto r = decide_election(t, plan, slices, answers, 3);
  REQUIRE(r.elected.size() == 4);
  CHECK(t.slices[3].primary == 2);
  // The others spread: b and c lead two each.
  auto led_by = [&](int32_t m) {
    return std::count_if(t.slices.begin(), t.slices.end(),
                         [m](const slice_assignment& a) { return a.primary == m; });
  };
  CHECK(led_by(1) == 2);
  CHECK(led_by(2) == 2);
}

TEST_CASE("a slice whose replica set shrank still needs more than n - q answers",
          "[directory][election]") {
  // One follower left (the other failed earlier and was dropped): n = 2, and with
  // RF 3 the quorum is 2, so that follower holds every acknowledged write.
  auto t = three_nodes({0});
  t.slices[0].followers = {1};
  auto r = decide_election(t, t, {0}, {seeded(0, 1, 4, 2)}, 3);
  CHECK(r.elected == std::vector<uint32_t>{0});
  CHECK(t.slices[0].primary == 1);
  // Without its answer nothing is decided.
  auto u = three_nodes({0});
  u.slices[0].followers = {1};
  r = decide_election(u, u, {0}, {}, 3);
  CHECK(r.unresolved == std::vector<uint32_t>{0});
}

TEST_CASE("an unsettled handoff: the replica that applied the most leads, source or "
          "target",
          "[directory][election]") {
  // Slice 0 was being handed from a (primary, epoch 4) to b at epoch 5 when the
  // handoff ended without an answer. The plan (the move's table) names b.
  auto t = three_nodes({0});
  auto plan = t;
  plan.slices[0].primary = 1;
  plan.slices[0].followers = {0, 2};
  plan.slices[0].epoch = 5;
  SECTION("the export never happened: a still holds the most and leads again") {
    auto r = decide_election(t, plan, {0},
                             {seeded(0, 0, 4, 9), seeded(0, 1, 4, 7), seeded(0, 2, 4, 7)},
                             3);
    CHECK(r.elected == std::vector<uint32_t>{0});
    CHECK(t.slices[0].primary == 0);
    CHECK(t.slices[0].epoch == 6); // above the handoff's epoch
  }
  SECTION("b imported the slice and took writes at epoch 5: b leads") {
    auto r = decide_election(t, plan, {0},
                             {seeded(0, 0, 4, 9), seeded(0, 1, 5, 3), seeded(0, 2, 5, 2)},
                             3);
    CHECK(r.elected == std::vector<uint32_t>{0});
    CHECK(t.slices[0].primary == 1);
    CHECK(t.slices[0].epoch == 6);
  }
  SECTION("b is gone: a and c decide, without b's answer") {
    auto r = decide_election(t, plan, {0}, {seeded(0, 0, 4, 9), seeded(0, 2, 5, 2)}, 3);
    CHECK(r.elected == std::vector<uint32_t>{0});
    CHECK(t.slices[0].primary == 2); // c applied what b streamed at epoch 5
    CHECK(t.slices[0].epoch == 6);
  }
}

TEST_CASE("unsettled slices are asked about until their epoch changes",
          "[directory][election]") {
  auto t = three_nodes({0, 1, 2});
  std::map<uint32_t, uint64_t> unsettled{{0, 4}, {1, 4}, {2, 3}, {7, 4}};
  // Slice 2's epoch moved on (4, not 3), slice 7 does not exist: both forgotten.
  CHECK(unsettled_slices(unsettled, t) == std::vector<uint32_t>{0, 1});
  CHECK(unsettled.size() == 2);
  t.slices[1].epoch = 6; // an election settled slice 1
  CHECK(unsettled_slices(unsettled, t) == std::vector<uint32_t>{0});
  CHECK(unsettled.size() == 1);
}
