#include "directory/placement.hpp"

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using namespace tether;
using namespace tether::directory;

namespace {

std::vector<member> make_members(size_t n) {
  std::vector<member> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back({"tether-" + std::to_string(i + 1),
                   "127.0.0.1:" + std::to_string(7000 + i), true});
  return out;
}

bool same_slices(const assignment_table& x, const assignment_table& y) {
  if (x.slices.size() != y.slices.size())
    return false;
  for (size_t s = 0; s < x.slices.size(); ++s) {
    auto& a = x.slices[s];
    auto& b = y.slices[s];
    if (a.epoch != b.epoch || a.primary != b.primary || a.followers != b.followers)
      return false;
  }
  return true;
}

bool same_table(const assignment_table& x, const assignment_table& y) {
  if (x.version != y.version || x.replication_factor != y.replication_factor
      || x.members.size() != y.members.size())
    return false;
  for (size_t m = 0; m < x.members.size(); ++m)
    if (x.members[m].name != y.members[m].name || x.members[m].up != y.members[m].up)
      return false;
  return same_slices(x, y);
}

/// Replicas of a slice, primary first; -1 entries skipped.
std::vector<int32_t> replicas(const slice_assignment& a) {
  std::vector<int32_t> out;
  if (a.primary >= 0)
    out.push_back(a.primary);
  out.insert(out.end(), a.followers.begin(), a.followers.end());
  return out;
}

bool distinct_replicas(const assignment_table& t) {
  for (auto& a : t.slices) {
    auto r = replicas(a);
    std::set<int32_t> u(r.begin(), r.end());
    if (u.size() != r.size())
      return false;
  }
  return true;
}

bool holds(const slice_assignment& a, int32_t m) {
  auto r = replicas(a);
  return std::find(r.begin(), r.end(), m) != r.end();
}

size_t up_replicas(const assignment_table& t, const slice_assignment& a) {
  size_t k = 0;
  for (auto m : replicas(a))
    k += t.members[static_cast<size_t>(m)].up ? 1 : 0;
  return k;
}

std::vector<size_t> primary_counts(const assignment_table& t) {
  std::vector<size_t> out(t.members.size());
  for (auto& a : t.slices)
    if (a.primary >= 0)
      ++out[static_cast<size_t>(a.primary)];
  return out;
}

std::vector<size_t> replica_counts(const assignment_table& t) {
  std::vector<size_t> out(t.members.size());
  for (auto& a : t.slices)
    for (auto m : replicas(a))
      ++out[static_cast<size_t>(m)];
  return out;
}

/// Checks what every plan guarantees: input untouched by construction (const), the
/// version grows by one iff there are moves, exactly the touched slices get one
/// epoch more, replicas stay distinct.
void check_plan(const assignment_table& before, const placement_plan& plan) {
  auto& after = plan.table;
  REQUIRE(distinct_replicas(after));
  if (plan.moves.empty()) {
    REQUIRE(same_table(before, after));
    return;
  }
  REQUIRE(after.version == before.version + 1);
  std::set<uint32_t> touched;
  for (auto& mv : plan.moves)
    touched.insert(mv.slice);
  for (uint32_t s = 0; s < after.slices.size(); ++s) {
    auto expected = before.slices[s].epoch + (touched.count(s) ? 1 : 0);
    REQUIRE(after.slices[s].epoch == expected);
    if (!touched.count(s)) {
      REQUIRE(after.slices[s].primary == before.slices[s].primary);
      REQUIRE(after.slices[s].followers == before.slices[s].followers);
    }
  }
}

/// Runs `op` until its plan is complete (or empty), checking every plan; returns
/// the final table and adds up the moves.
template <class Op>
assignment_table converge(assignment_table t, Op op, size_t& total_moves,
                          uint32_t max_moves, size_t max_rounds = 10000) {
  for (size_t round = 0; round < max_rounds; ++round) {
    auto plan = op(t);
    check_plan(t, plan);
    CAPTURE(round);
    REQUIRE(plan.moves.size() <= max_moves);
    total_moves += plan.moves.size();
    t = plan.table;
    if (plan.complete || plan.moves.empty())
      return t;
  }
  FAIL("no convergence");
  return t;
}

bool within(const std::vector<double>& load, const std::vector<int32_t>& ms,
            double tol) {
  double sum = 0;
  for (auto m : ms)
    sum += load[static_cast<size_t>(m)];
  auto mean = sum / static_cast<double>(ms.size());
  for (auto m : ms) {
    auto l = load[static_cast<size_t>(m)];
    if (l < mean * (1 - tol) - 1e-6 || l > mean * (1 + tol) + 1e-6)
      return false;
  }
  return true;
}

std::vector<int32_t> all_up(const assignment_table& t) {
  std::vector<int32_t> out;
  for (size_t m = 0; m < t.members.size(); ++m)
    if (t.members[m].up)
      out.push_back(static_cast<int32_t>(m));
  return out;
}

const std::vector<slice_load> no_load;

} // namespace

TEST_CASE("initial placement spreads primaries and replicas exactly", "[placement]") {
  for (size_t n : {3u, 4u, 5u}) {
    for (uint32_t rf : {1u, 3u}) {
      CAPTURE(n, rf);
      auto plan = initial_placement(make_members(n), 1024, rf);
      auto& t = plan.table;
      REQUIRE(t.version == 1);
      REQUIRE(t.replication_factor == rf);
      REQUIRE(t.slices.size() == 1024);
      REQUIRE(plan.moves.size() == 1024 * rf);
      REQUIRE(distinct_replicas(t));
      for (auto& a : t.slices) {
        REQUIRE(a.epoch == 1);
        REQUIRE(replicas(a).size() == rf);
      }
      for (auto c : primary_counts(t)) {
        REQUIRE(c >= 1024 / n);
        REQUIRE(c <= (1024 + n - 1) / n);
      }
      for (auto c : replica_counts(t)) {
        REQUIRE(c >= 1024 * rf / n);
        REQUIRE(c <= (1024 * rf + n - 1) / n);
      }
      // Deterministic.
      auto again = initial_placement(make_members(n), 1024, rf);
      REQUIRE(same_table(t, again.table));
      REQUIRE(plan.moves == again.moves);
    }
  }
}

TEST_CASE("initial placement skips down members and caps RF", "[placement]") {
  auto ms = make_members(3);
  ms[1].up = false;
  auto t = initial_placement(ms, 64, 3).table;
  REQUIRE(t.replication_factor == 2);
  for (auto& a : t.slices)
    REQUIRE_FALSE(holds(a, 1));
  REQUIRE(distinct_replicas(t));
}

TEST_CASE("a join moves a bounded number of slices and ends balanced", "[placement]") {
  for (uint32_t rf : {1u, 3u}) {
    CAPTURE(rf);
    placement_options opts;
    const uint32_t slices = 1024;
    auto t = initial_placement(make_members(3), slices, rf).table;
    t.members.push_back({"tether-4", "127.0.0.1:7003", true});
    auto start = t;
    // Bound: the new member must end with about rf * slices / 4 replicas, slices / 4
    // of them primaries. Every copy lands on it (any other copy would be a move
    // without need) and every promotion hands it a primary, so a plan that never
    // moves without need makes at most these many copies and promotions.
    const size_t copy_bound = (rf * slices + 3) / 4;
    const size_t promote_bound = (slices + 3) / 4;
    size_t copies = 0;
    size_t promotes = 0;
    size_t rounds = 0;
    for (;;) {
      auto plan = rebalance(t, no_load, opts);
      check_plan(t, plan);
      REQUIRE(plan.moves.size() <= opts.max_moves);
      for (auto& mv : plan.moves) {
        REQUIRE(mv.to == 3); // everything goes to the new member
        if (mv.kind == move_kind::copy)
          ++copies;
        else if (mv.kind == move_kind::promote)
          ++promotes;
        else
          FAIL("unexpected drop");
      }
      t = plan.table;
      ++rounds;
      if (plan.complete)
        break;
      REQUIRE(rounds < 1000);
    }
    CHECK(copies <= copy_bound);
    CHECK(promotes <= promote_bound);
    if (rf == 1)
      CHECK(promotes == 0);
    // Within tolerance, by combined load and by primary and replica counts.
    REQUIRE(within(member_load(t, no_load, opts), all_up(t), opts.tolerance));
    std::vector<double> pc, rc;
    for (auto c : primary_counts(t))
      pc.push_back(static_cast<double>(c));
    for (auto c : replica_counts(t))
      rc.push_back(static_cast<double>(c));
    REQUIRE(within(pc, all_up(t), opts.tolerance));
    REQUIRE(within(rc, all_up(t), opts.tolerance));
    // Stability: the balanced table needs nothing.
    auto again = rebalance(t, no_load, opts);
    REQUIRE(again.moves.empty());
    REQUIRE(again.complete);
    REQUIRE(same_table(again.table, t));
    // Determinism: the same input gives the same plan.
    auto p1 = rebalance(start, no_load, opts);
    auto p2 = rebalance(start, no_load, opts);
    REQUIRE(p1.moves == p2.moves);
    REQUIRE(same_table(p1.table, p2.table));
  }
}

TEST_CASE("rebalance with RF 3 copies followers, never primaries, on a join", "[placement]") {
  placement_options opts;
  opts.max_moves = 100000;
  auto t = initial_placement(make_members(3), 256, 3).table;
  t.members.push_back({"tether-4", "", true});
  auto plan = rebalance(t, no_load, opts);
  REQUIRE(plan.complete);
  for (auto& mv : plan.moves)
    if (mv.kind == move_kind::copy)
      REQUIRE(mv.role == replica_role::follower);
}

TEST_CASE("rebalance of an initial placement is empty", "[placement]") {
  for (size_t n : {1u, 2u, 3u, 4u, 5u})
    for (uint32_t rf : {1u, 2u, 3u}) {
      auto t = initial_placement(make_members(n), 1024, rf).table;
      auto plan = rebalance(t, no_load, {});
      REQUIRE(plan.moves.empty());
      REQUIRE(plan.complete);
    }
}

TEST_CASE("rebalance follows the load, not just the counts", "[placement]") {
  placement_options opts;
  opts.max_moves = 100000;
  auto t = initial_placement(make_members(2), 64, 1).table;
  // Every slice of member 0 is hot: ten times the weight of member 1's.
  std::vector<slice_load> loads(64);
  for (uint32_t s = 0; s < 64; ++s)
    if (t.slices[s].primary == 0)
      loads[s].samples_per_second = 9000; // weight 10
  auto plan = rebalance(t, loads, opts);
  REQUIRE(plan.complete);
  REQUIRE_FALSE(plan.moves.empty());
  REQUIRE(within(member_load(plan.table, loads, opts), all_up(plan.table),
                 opts.tolerance));
}

TEST_CASE("drain empties the member and keeps RF and distinct replicas", "[placement]") {
  for (uint32_t rf : {1u, 2u, 3u}) {
    CAPTURE(rf);
    placement_options opts;
    auto t = initial_placement(make_members(4), 1024, rf).table;
    size_t total = 0;
    auto drained = converge(
      t, [&](const assignment_table& x) { return drain(x, 1, no_load, opts); },
      total, opts.max_moves);
    for (auto& a : drained.slices) {
      REQUIRE_FALSE(holds(a, 1));
      REQUIRE(replicas(a).size() == rf);
    }
    REQUIRE(distinct_replicas(drained));
    // Least loaded first keeps the remaining three within tolerance.
    auto load = member_load(drained, no_load, opts);
    std::vector<int32_t> rest{0, 2, 3};
    REQUIRE(within(load, rest, opts.tolerance));
    // Primaries were promoted, not copied, when a follower existed.
    auto plan = drain(t, 1, no_load, opts);
    for (auto& mv : plan.moves)
      if (mv.role == replica_role::primary)
        REQUIRE(mv.kind == (rf > 1 ? move_kind::promote : move_kind::copy));
    // Done means done.
    REQUIRE(drain(drained, 1, no_load, opts).moves.empty());
  }
}

TEST_CASE("drain drops followers when no member is left for them", "[placement]") {
  auto t = initial_placement(make_members(3), 32, 3).table;
  placement_options opts;
  opts.max_moves = 1000;
  auto plan = drain(t, 0, no_load, opts);
  REQUIRE(plan.complete);
  for (auto& a : plan.table.slices) {
    REQUIRE_FALSE(holds(a, 0));
    REQUIRE(replicas(a).size() == 2);
    REQUIRE(a.primary >= 0);
  }
}

TEST_CASE("restore_rf promotes followers and replaces replicas of a down member", "[placement]") {
  placement_options opts;
  auto t = initial_placement(make_members(4), 1024, 3).table;
  t.members[2].up = false;
  auto first = restore_rf(t, no_load, opts);
  check_plan(t, first);
  // Failover is not held back by max_moves: every primary is up after one plan.
  for (auto& a : first.table.slices)
    REQUIRE(first.table.members[static_cast<size_t>(a.primary)].up);
  size_t copies = 0;
  for (auto& mv : first.moves)
    if (mv.kind == move_kind::copy)
      ++copies;
  REQUIRE(copies <= opts.max_moves);
  REQUIRE_FALSE(first.complete);
  size_t total = 0;
  auto restored = converge(
    first.table, [&](const assignment_table& x) { return restore_rf(x, no_load, opts); },
    total, opts.max_moves);
  for (auto& a : restored.slices) {
    REQUIRE_FALSE(holds(a, 2));
    REQUIRE(up_replicas(restored, a) == 3);
  }
  REQUIRE(within(member_load(restored, no_load, opts), {0, 1, 3}, opts.tolerance));
  REQUIRE(restore_rf(restored, no_load, opts).moves.empty());
}

TEST_CASE("restore_rf leaves a slice with no up replica where it is", "[placement]") {
  auto t = initial_placement(make_members(2), 8, 1).table;
  t.members[0].up = false;
  auto plan = restore_rf(t, no_load, {});
  REQUIRE(plan.moves.empty());
  REQUIRE(plan.complete);
}

TEST_CASE("a balance round on a table without slices does nothing", "[placement]") {
  assignment_table t;
  t.members = make_members(3);
  auto plan = balance_round(t, no_load, {});
  REQUIRE(plan.moves.empty());
  REQUIRE(plan.complete);
  REQUIRE(same_table(plan.table, t));
}

TEST_CASE("a balance round restores followers first and promotes nothing", "[placement]") {
  placement_options opts;
  opts.max_moves = 100000;
  auto t = initial_placement(make_members(4), 256, 3).table;
  t.members[3].up = false;
  auto plan = balance_round(t, no_load, opts);
  // restore_rf would also promote followers where member 3 led; a round leaves those
  // slices to the election and copies followers onto up members elsewhere.
  REQUIRE_FALSE(plan.moves.empty());
  REQUIRE(plan.moves.size() <= opts.max_moves);
  REQUIRE_FALSE(plan.complete);
  for (auto& mv : plan.moves) {
    REQUIRE(mv.kind == move_kind::copy);
    REQUIRE(mv.role == replica_role::follower);
    REQUIRE(plan.table.members[static_cast<size_t>(mv.to)].up);
  }
  std::vector<bool> moved(t.slices.size());
  for (auto& mv : plan.moves)
    moved[mv.slice] = true;
  for (size_t s = 0; s < t.slices.size(); ++s) {
    REQUIRE(plan.table.slices[s].primary == t.slices[s].primary);
    if (!moved[s]) // a slice without a copy keeps its replicas and epoch
      REQUIRE(replicas(plan.table.slices[s]) == replicas(t.slices[s]));
    if (!moved[s])
      REQUIRE(plan.table.slices[s].epoch == t.slices[s].epoch);
    if (t.slices[s].primary == 3) // waits for its election, untouched
      REQUIRE_FALSE(moved[s]);
    if (t.slices[s].primary != 3 && holds(t.slices[s], 3)) // its follower replaced
      REQUIRE(moved[s]);
  }
  REQUIRE(distinct_replicas(plan.table));
}

TEST_CASE("a balance round with only orphaned slices to copy for rebalances nothing",
          "[placement]") {
  placement_options opts;
  opts.max_moves = 100000;
  auto t = initial_placement(make_members(3), 64, 2).table;
  t.members.push_back({"tether-4", "", true}); // room to rebalance onto
  // Member 0 is down and leads slices whose only follower is elsewhere.
  t.members[0].up = false;
  auto plan = balance_round(t, no_load, opts);
  for (auto& mv : plan.moves) {
    REQUIRE(mv.kind == move_kind::copy);
    REQUIRE(t.slices[mv.slice].primary != 0);
  }
  REQUIRE_FALSE(plan.complete);
}

TEST_CASE("a balance round with every replica in place rebalances", "[placement]") {
  placement_options opts;
  opts.max_moves = 100000;
  auto t = initial_placement(make_members(3), 256, 3).table;
  t.members.push_back({"tether-4", "", true});
  auto round = balance_round(t, no_load, opts);
  auto plan = rebalance(t, no_load, opts);
  REQUIRE_FALSE(round.moves.empty());
  REQUIRE(round.moves.size() == plan.moves.size());
  REQUIRE(same_table(round.table, plan.table));
  REQUIRE(round.complete == plan.complete);
  // Balanced: the next round has nothing to do.
  REQUIRE(balance_round(round.table, no_load, opts).moves.empty());
}

TEST_CASE("a member restarted under the same name keeps its slices", "[placement]") {
  auto t = initial_placement(make_members(3), 1024, 3).table;
  auto original = t;
  auto m = find_member(t, "tether-2");
  REQUIRE(m == 1);
  t.members[static_cast<size_t>(m)].up = false; // it went away ...
  t.members[static_cast<size_t>(m)].up = true;  // ... and came back as tether-2
  auto r = restore_rf(t, no_load, {});
  REQUIRE(r.moves.empty());
  auto b = rebalance(r.table, no_load, {});
  REQUIRE(b.moves.empty());
  REQUIRE(same_slices(b.table, original));
  REQUIRE(primary_counts(b.table)[1] == primary_counts(original)[1]);
}

TEST_CASE("a member back before restore_rf finished gets its slices back cheaply", "[placement]") {
  placement_options opts;
  auto t = initial_placement(make_members(4), 1024, 3).table;
  auto held = replica_counts(t)[3];
  t.members[3].up = false;
  auto failover = restore_rf(t, no_load, opts); // promotions + max_moves copies
  size_t replaced = 0;
  for (auto& mv : failover.moves)
    replaced += mv.kind == move_kind::copy ? 1 : 0;
  REQUIRE(replaced == opts.max_moves);
  t = failover.table;
  REQUIRE(primary_counts(t)[3] == 0);
  auto back = find_member(t, "tether-4");
  REQUIRE(back == 3);
  t.members[static_cast<size_t>(back)].up = true; // restarted, same name
  REQUIRE(replica_counts(t)[3] == held - replaced);  // still holds the rest
  REQUIRE(restore_rf(t, no_load, opts).moves.empty());
  size_t copies = 0;
  size_t promotes = 0;
  for (int round = 0; round < 1000; ++round) {
    auto plan = rebalance(t, no_load, opts);
    check_plan(t, plan);
    for (auto& mv : plan.moves)
      ++(mv.kind == move_kind::promote ? promotes : copies);
    t = plan.table;
    if (plan.complete)
      break;
  }
  // Its primaries come back by promotion (no data), and it needs at most the
  // replaced replicas copied back.
  CHECK(copies <= replaced);
  CHECK(promotes <= (1024 + 3) / 4);
  REQUIRE(within(member_load(t, no_load, opts), all_up(t), opts.tolerance));
}

TEST_CASE("property: random tables and loads keep the invariants", "[placement]") {
  for (uint32_t seed = 1; seed <= 300; ++seed) {
    CAPTURE(seed);
    std::mt19937 rng(seed);
    auto pick = [&](uint32_t lo, uint32_t hi) {
      return std::uniform_int_distribution<uint32_t>(lo, hi)(rng);
    };
    auto n = pick(1, 6);
    auto rf = pick(1, 3);
    auto slices = pick(16, 128);
    placement_options opts;
    opts.max_moves = pick(1, 24);
    opts.tolerance = pick(5, 25) / 100.0;
    std::vector<slice_load> loads(slices);
    for (auto& l : loads) {
      l.series = pick(0, 3000);
      l.samples_per_second = pick(0, 5000);
    }
    auto t = initial_placement(make_members(n), slices, rf).table;
    auto effective_rf = t.replication_factor;
    // Random joins.
    for (auto joins = pick(0, 2); joins > 0; --joins)
      t.members.push_back({"joined-" + std::to_string(t.members.size()), "", true});
    size_t total = 0;
    auto bal = [&](const assignment_table& x) { return rebalance(x, loads, opts); };
    INFO("join rebalance");
    t = converge(t, bal, total, opts.max_moves);
    auto stable = rebalance(t, loads, opts);
    REQUIRE(stable.moves.empty());
    REQUIRE(same_table(stable.table, t));
    // A random member goes down; restore.
    auto down = pick(0, static_cast<uint32_t>(t.members.size()) - 1);
    t.members[down].up = false;
    auto ups = all_up(t).size();
    auto before_restore = t;
    auto plan = restore_rf(t, loads, opts);
    check_plan(t, plan);
    size_t copies = 0;
    for (auto& mv : plan.moves)
      copies += mv.kind == move_kind::copy ? 1 : 0;
    REQUIRE(copies <= opts.max_moves);
    REQUIRE(same_table(t, before_restore)); // input untouched
    auto again = restore_rf(t, loads, opts);
    REQUIRE(again.moves == plan.moves); // determinism
    t = plan.table;
    for (int round = 0; !plan.complete && round < 10000; ++round) {
      plan = restore_rf(t, loads, opts);
      check_plan(t, plan);
      t = plan.table;
    }
    REQUIRE(plan.complete);
    for (auto& a : t.slices) {
      REQUIRE(replicas(a).size() == effective_rf);
      auto live = up_replicas(t, a);
      if (live > 0) {
        REQUIRE(t.members[static_cast<size_t>(a.primary)].up);
        REQUIRE(live == std::min<size_t>(effective_rf, ups));
      }
    }
    // Rebalance the survivors, then drain a random up member.
    INFO("survivor rebalance");
    t = converge(t, bal, total, opts.max_moves);
    REQUIRE(rebalance(t, loads, opts).moves.empty());
    auto ms = all_up(t);
    if (ms.size() < 2)
      continue;
    auto victim = ms[pick(0, static_cast<uint32_t>(ms.size()) - 1)];
    std::vector<size_t> live_before;
    for (auto& a : t.slices)
      live_before.push_back(up_replicas(t, a));
    t = converge(
      t, [&](const assignment_table& x) { return drain(x, victim, loads, opts); },
      total, opts.max_moves);
    for (size_t s = 0; s < t.slices.size(); ++s) {
      auto& a = t.slices[s];
      if (live_before[s] == 0)
        continue;
      REQUIRE_FALSE(holds(a, victim));
      REQUIRE(up_replicas(t, a)
              >= std::min<size_t>(live_before[s], ms.size() - 1));
    }
  }
}

TEST_CASE("the first table lists the directory members first, then the others by name",
          "[placement]") {
  std::map<std::string, member> joined;
  for (auto name : {"zed", "d2", "alpha", "d1"}) {
    member m;
    m.name = name;
    m.address = std::string{name} + ":1";
    joined[name] = m;
  }
  auto t = first_table({"d2", "d1"}, joined, 12, 3);
  REQUIRE(t.members.size() == 4);
  CHECK(t.members[0].name == "d2");
  CHECK(t.members[1].name == "d1");
  CHECK(t.members[2].name == "alpha");
  CHECK(t.members[3].name == "zed");
  CHECK(t.members[3].address == "zed:1");
  REQUIRE(t.slices.size() == 12);
  CHECK(t.replication_factor == 3);
  for (auto& a : t.slices) {
    CHECK(a.epoch == 1);
    CHECK(a.followers.size() == 2);
  }
}

TEST_CASE("an operator's move: refused, already done, or one primary move",
          "[placement]") {
  auto t = initial_placement(make_members(3), 16, 3).table;
  auto& a = t.slices[5];
  auto follower = a.followers.at(0);
  auto name = t.members[static_cast<size_t>(follower)].name;
  SECTION("unknown member, unknown slice, member down") {
    CHECK(decide_move(t, 5, "nobody").what == move_decision::step::refuse);
    CHECK(decide_move(t, 5, "nobody").why == "no member is called nobody");
    CHECK(decide_move(t, 16, name).why == "no slice 16");
    t.members[static_cast<size_t>(follower)].up = false;
    auto d = decide_move(t, 5, name);
    CHECK(d.what == move_decision::step::refuse);
    CHECK(d.why == name + " is not up");
  }
  SECTION("to its primary: nothing to do") {
    auto primary = t.members[static_cast<size_t>(a.primary)].name;
    CHECK(decide_move(t, 5, primary).what == move_decision::step::already);
  }
  SECTION("to a follower: it leads at the next epoch, and follows no more") {
    auto d = decide_move(t, 5, name);
    REQUIRE(d.what == move_decision::step::move);
    REQUIRE(d.plan.moves.size() == 1);
    CHECK(d.plan.moves[0].slice == 5);
    CHECK(d.plan.moves[0].from == a.primary);
    CHECK(d.plan.moves[0].to == follower);
    CHECK(d.plan.moves[0].role == replica_role::primary);
    auto& b = d.plan.table.slices[5];
    CHECK(b.primary == follower);
    CHECK(b.epoch == a.epoch + 1);
    CHECK(std::find(b.followers.begin(), b.followers.end(), follower)
          == b.followers.end());
    for (uint32_t s = 0; s < 16; ++s)
      if (s != 5)
        CHECK(d.plan.table.slices[s].primary == t.slices[s].primary);
  }
}

TEST_CASE("the end of a drain: unknown, incomplete, already down, or marked",
          "[placement]") {
  auto t = initial_placement(make_members(3), 16, 3).table;
  t.version = 7;
  CHECK(end_drain(t, "nobody").what == drain_end::step::unknown);
  // tether-2 still leads slices: the drain did not finish.
  CHECK(end_drain(t, "tether-2").what == drain_end::step::incomplete);
  for (auto& s : t.slices)
    if (s.primary == 1)
      s.primary = 0;
  auto d = end_drain(t, "tether-2");
  REQUIRE(d.what == drain_end::step::mark);
  CHECK(d.next.version == 8);
  CHECK_FALSE(d.next.members[1].up);
  CHECK(d.next.members[1].drained);
  CHECK(d.next.members[0].up);
  CHECK(same_slices(d.next, t));
  t.members[1].up = false;
  CHECK(end_drain(t, "tether-2").what == drain_end::step::already_down);
}
