#include "directory/raft/raft_node.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "directory/raft/sim_cluster.hpp"

using namespace tether::directory::raft;

namespace tether::directory::raft::internal {

// Lets Catch print strong values in failed expansions.
template <class Tag, class T>
std::ostream& operator<<(std::ostream& out, strong_value<Tag, T> x) {
  return out << x.value;
}

} // namespace tether::directory::raft::internal

namespace {

member_id m(uint32_t x) {
  return member_id{x};
}

// Counts the fields an inspect overload hands to the inspector.
struct field_counter {
  using result_type = void;
  size_t fields = 0;
  template <class... Ts>
  void operator()(Ts&...) {
    fields += sizeof...(Ts);
  }
};

// True if all live members applied the same entries.
bool converged(sim_cluster& sim) {
  auto ids = sim.ids();
  for (auto id : ids)
    if (sim.alive(id) && sim.applied(id) != sim.applied(ids.front()))
      return false;
  return true;
}

sim_options options(size_t members, uint64_t seed) {
  sim_options result;
  result.members = members;
  result.seed = seed;
  return result;
}

bool has_command(const std::vector<std::string>& xs, const std::string& x) {
  return std::find(xs.begin(), xs.end(), x) != xs.end();
}

// Proposes `cmd` to whoever leads until every live member has applied it.
bool commit_everywhere(sim_cluster& sim, const std::string& cmd) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    sim.propose(cmd); // may reach a leader that is about to lose; then retry
    if (sim.run_until([&] { return has_command(sim.commands(m(1)), cmd)
                                   && converged(sim); },
                      50))
      return true;
  }
  return false;
}

} // namespace

TEST_CASE("a single-member group commits a proposal immediately", "[raft]") {
  raft_node n{m(1), {m(1)}, raft_config{}, 7};
  CHECK(!n.propose("early").has_value());
  for (int i = 0; i < 40 && !n.is_leader(); ++i)
    n.tick();
  REQUIRE(n.is_leader());
  CHECK(n.take_outbox().empty());
  auto idx = n.propose("set a=1");
  REQUIRE(idx.has_value());
  CHECK(n.commit_index() == *idx);
  auto committed = n.take_committed();
  REQUIRE(committed.size() == 2); // the leader's no-op, then the command
  CHECK(committed[0].kind == entry_kind::noop);
  CHECK(committed[1].command == "set a=1");
  CHECK(committed[1].index == *idx);
  CHECK(n.take_committed().empty());
}

TEST_CASE("a leader counts replicas only for entries of its own term", "[raft]") {
  raft_node n{m(1), {m(1), m(2), m(3)}, raft_config{}, 3};
  // Member 2 led term 2 and left an uncommitted entry on member 1.
  n.receive(message{m(2), m(1),
                    append_entries{term{2}, log_index{0}, term{0},
                                   {entry{term{2}, log_index{1}, entry_kind::command,
                                          "old"}},
                                   log_index{0}}});
  REQUIRE(n.last_index() == log_index{1});
  n.take_outbox();
  // Member 1 times out and wins term 3 with member 3's vote.
  for (int i = 0; i < 40 && n.role() != role::candidate; ++i)
    n.tick();
  REQUIRE(n.role() == role::candidate);
  REQUIRE(n.current_term() == term{3});
  n.receive(message{m(3), m(1), vote_reply{term{3}, true}});
  REQUIRE(n.is_leader());
  REQUIRE(n.last_index() == log_index{2}); // the no-op of term 3
  // A majority now stores the term 2 entry, but that alone must not commit it.
  n.receive(message{m(3), m(1),
                    append_reply{term{3}, true, log_index{1}, log_index{0}}});
  CHECK(n.commit_index() == log_index{0});
  CHECK(n.take_committed().empty());
  // Once the term 3 entry is on a majority, both commit.
  n.receive(message{m(3), m(1),
                    append_reply{term{3}, true, log_index{2}, log_index{0}}});
  CHECK(n.commit_index() == log_index{2});
  auto committed = n.take_committed();
  REQUIRE(committed.size() == 2);
  CHECK(committed[0].command == "old");
}

TEST_CASE("a higher term makes a leader step down and fences stale ones", "[raft]") {
  raft_node n{m(1), {m(1), m(2), m(3)}, raft_config{}, 4};
  for (int i = 0; i < 40 && n.role() != role::candidate; ++i)
    n.tick();
  n.receive(message{m(2), m(1), vote_reply{n.current_term(), true}});
  REQUIRE(n.is_leader());
  auto t = n.current_term();
  n.take_outbox();
  // A stale leader's append is refused with the current term.
  n.receive(message{m(3), m(1),
                    append_entries{term{0}, log_index{0}, term{0}, {}, log_index{0}}});
  auto out = n.take_outbox();
  REQUIRE(out.size() == 1);
  auto* reply = std::get_if<append_reply>(&out[0].payload);
  REQUIRE(reply != nullptr);
  CHECK(!reply->success);
  CHECK(reply->term == t);
  CHECK(n.is_leader());
  // A reply carrying a higher term deposes it.
  n.receive(message{m(2), m(1), vote_reply{term{t.value + 5}, false}});
  CHECK(!n.is_leader());
  CHECK(n.current_term() == term{t.value + 5});
  CHECK(!n.propose("late").has_value());
}

TEST_CASE("term, vote and log survive a restart but volatile state does not",
          "[raft]") {
  raft_node n{m(1), {m(1), m(2), m(3)}, raft_config{}, 5};
  n.receive(message{m(2), m(1), vote_request{term{5}, log_index{0}, term{0}}});
  REQUIRE(n.voted_for() == m(2));
  n.receive(message{m(2), m(1),
                    append_entries{term{5}, log_index{0}, term{0},
                                   {entry{term{5}, log_index{1}, entry_kind::command,
                                          "kept"}},
                                   log_index{1}}});
  REQUIRE(n.commit_index() == log_index{1});
  n.take_outbox();
  n.restart();
  CHECK(n.current_term() == term{5});
  CHECK(n.voted_for() == m(2));
  CHECK(n.last_index() == log_index{1});
  CHECK(n.commit_index() == log_index{0});
  CHECK(!n.leader().has_value());
  CHECK(n.take_committed().empty());
  // Still bound by its vote in term 5.
  n.receive(message{m(3), m(1), vote_request{term{5}, log_index{1}, term{5}}});
  auto out = n.take_outbox();
  REQUIRE(out.size() == 1);
  CHECK(!std::get<vote_reply>(out[0].payload).granted);
  // The commit index comes back from the leader and the entry is handed out again.
  n.receive(message{m(2), m(1),
                    append_entries{term{5}, log_index{1}, term{5}, {}, log_index{1}}});
  auto committed = n.take_committed();
  REQUIRE(committed.size() == 1);
  CHECK(committed[0].command == "kept");
}

TEST_CASE("three members elect exactly one leader per term", "[raft]") {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    sim_cluster sim{options(3, seed)};
    REQUIRE(sim.run_until([&] { return sim.leader().has_value(); }, 200));
    sim.run(100);
    CHECK(sim.leader_count() == 1);
    auto l = *sim.leader();
    for (auto id : sim.ids()) {
      CHECK(sim.node(id).current_term() == sim.node(l).current_term());
      CHECK(sim.node(id).leader() == l);
    }
    CHECK(sim.violations().empty());
  }
}

TEST_CASE("proposals commit and every member applies the same sequence", "[raft]") {
  for (size_t size : {3u, 5u}) {
    sim_cluster sim{options(size, 42)};
    REQUIRE(sim.run_until([&] { return sim.leader().has_value(); }, 200));
    auto l = *sim.leader();
    std::vector<std::string> expected;
    for (int i = 0; i < 30; ++i) {
      expected.push_back("cmd" + std::to_string(i));
      REQUIRE(sim.propose(l, expected.back()).has_value());
      if (i % 3 == 0)
        sim.tick();
    }
    for (auto id : sim.ids())
      if (id != l)
        CHECK(!sim.node(id).propose("not a leader").has_value());
    REQUIRE(sim.run_until([&] { return sim.commands(m(1)).size() == 30
                                       && converged(sim); },
                          100));
    for (auto id : sim.ids())
      CHECK(sim.commands(id) == expected);
    CHECK(sim.violations().empty());
  }
}

TEST_CASE("a new leader takes over after a crash and keeps committed entries",
          "[raft]") {
  sim_cluster sim{options(3, 5)};
  REQUIRE(sim.run_until([&] { return sim.leader().has_value(); }, 200));
  auto old = *sim.leader();
  auto old_term = sim.node(old).current_term();
  for (int i = 0; i < 5; ++i)
    sim.propose(old, "a" + std::to_string(i));
  REQUIRE(sim.run_until([&] { return converged(sim) && sim.commands(m(1)).size() == 5; },
                        50));
  sim.crash(old);
  REQUIRE(sim.run_until([&] { return sim.leader().has_value() && *sim.leader() != old; },
                        200));
  auto fresh = *sim.leader();
  CHECK(sim.node(fresh).current_term() > old_term);
  for (int i = 0; i < 5; ++i)
    REQUIRE(sim.propose(fresh, "b" + std::to_string(i)).has_value());
  sim.restart(old);
  REQUIRE(sim.run_until([&] { return converged(sim) && sim.commands(old).size() == 10; },
                        200));
  auto cmds = sim.commands(old);
  CHECK(cmds.front() == "a0");
  CHECK(cmds.back() == "b4");
  CHECK(!sim.node(old).is_leader());
  CHECK(sim.violations().empty());
}

TEST_CASE("a partitioned old leader cannot commit and steps down on heal", "[raft]") {
  sim_cluster sim{options(3, 11)};
  REQUIRE(sim.run_until([&] { return sim.leader().has_value(); }, 200));
  auto old = *sim.leader();
  sim.propose(old, "before");
  REQUIRE(sim.run_until([&] { return converged(sim) && sim.commands(m(1)).size() == 1; },
                        50));
  std::vector<member_id> rest;
  for (auto id : sim.ids())
    if (id != old)
      rest.push_back(id);
  sim.partition({{old}, rest});
  auto old_commit = sim.node(old).commit_index();
  for (int i = 0; i < 3; ++i)
    REQUIRE(sim.propose(old, "orphan" + std::to_string(i)).has_value());
  REQUIRE(sim.run_until(
    [&] {
      auto l = sim.leader();
      return l && *l != old;
    },
    300));
  auto fresh = *sim.leader();
  for (int i = 0; i < 3; ++i)
    REQUIRE(sim.propose(fresh, "fresh" + std::to_string(i)).has_value());
  sim.run(100);
  CHECK(sim.node(old).is_leader()); // it never hears otherwise ...
  CHECK(sim.node(old).commit_index() == old_commit); // ... but commits nothing
  CHECK(sim.commands(rest[0]).size() == 4);
  sim.heal();
  REQUIRE(sim.run_until([&] { return !sim.node(old).is_leader()
                                     && converged(sim)
                                     && sim.commands(old).size() == 4; },
                        300));
  for (auto id : sim.ids()) {
    auto cmds = sim.commands(id);
    CHECK(cmds == std::vector<std::string>{"before", "fresh0", "fresh1", "fresh2"});
    for (auto& e : sim.node(id).log())
      CHECK(e.command.rfind("orphan", 0) != 0); // replaced in every log
  }
  CHECK(sim.violations().empty());
}

TEST_CASE("a majority commits while one link is cut, the cut member catches up",
          "[raft]") {
  sim_cluster sim{options(3, 21)};
  REQUIRE(sim.run_until([&] { return sim.leader().has_value(); }, 200));
  auto l = *sim.leader();
  member_id cut = l == m(1) ? m(2) : m(1);
  sim.run(20); // settle: every follower caught up
  sim.block_link(l, cut);
  for (int i = 0; i < 10; ++i)
    REQUIRE(sim.propose(l, "z" + std::to_string(i)).has_value());
  // Leader and third member are a majority: the entries commit within a few ticks,
  // before the cut member's election timeout can disturb them.
  REQUIRE(sim.run_until([&] { return sim.commands(l).size() == 10; }, 6));
  CHECK(sim.commands(cut).empty());
  sim.heal();
  REQUIRE(commit_everywhere(sim, "after"));
  CHECK(sim.commands(cut).size() == 11);
  CHECK(sim.violations().empty());
}

TEST_CASE("a lagging member is brought level by a snapshot", "[raft]") {
  auto opts = options(3, 3);
  opts.compact_every = 8;
  sim_cluster sim{opts};
  REQUIRE(sim.run_until([&] { return sim.leader().has_value(); }, 200));
  auto l = *sim.leader();
  member_id lagging = l == m(3) ? m(2) : m(3);
  sim.crash(lagging);
  for (int i = 0; i < 40; ++i) {
    REQUIRE(sim.propose(l, "x" + std::to_string(i)).has_value());
    sim.tick();
  }
  sim.run(10);
  REQUIRE(sim.node(l).snapshot().last_index > log_index{1});
  CHECK(sim.counters().snapshots_applied == 0);
  sim.restart(lagging);
  REQUIRE(sim.run_until([&] { return converged(sim)
                                     && sim.commands(lagging).size() == 40; },
                        200));
  CHECK(sim.counters().snapshots_applied > 0);
  CHECK(sim.node(lagging).snapshot().last_index > log_index{0});
  CHECK(sim.commands(lagging) == sim.commands(l));
  CHECK(sim.violations().empty());
}

TEST_CASE("a restarted member rebuilds its state from its own snapshot", "[raft]") {
  auto opts = options(1, 9);
  opts.compact_every = 4;
  sim_cluster sim{opts};
  REQUIRE(sim.run_until([&] { return sim.leader().has_value(); }, 200));
  for (int i = 0; i < 10; ++i)
    sim.propose("y" + std::to_string(i));
  auto before = sim.commands(m(1));
  REQUIRE(before.size() == 10);
  REQUIRE(sim.node(1).snapshot().last_index > log_index{0});
  sim.crash(m(1));
  sim.restart(m(1));
  CHECK(sim.counters().snapshots_applied == 1);
  REQUIRE(sim.run_until([&] { return sim.commands(m(1)).size() >= 10; }, 200));
  auto after = sim.commands(m(1));
  after.resize(10);
  CHECK(after == before);
  CHECK(sim.violations().empty());
}

TEST_CASE("safety holds under random drops, delays, reorders and crashes", "[raft]") {
  uint64_t total_committed = 0;
  uint64_t total_snapshots = 0;
  uint64_t total_terms = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    sim_options opts;
    opts.members = seed % 4 == 0 ? 5 : 3;
    opts.seed = seed;
    opts.drop_probability = 0.15;
    opts.min_delay = 1;
    opts.max_delay = 4;
    opts.reorder = true;
    opts.compact_every = seed % 2 == 0 ? 6 : 0;
    sim_cluster sim{opts};
    std::mt19937_64 chaos{seed ^ 0x9e3779b97f4a7c15ull};
    int next_cmd = 0;
    for (int t = 0; t < 300; ++t) {
      sim.tick();
      if (chaos() % 3 == 0)
        sim.propose("c" + std::to_string(next_cmd++));
      if (chaos() % 60 == 0) {
        auto victim = member_id{static_cast<uint32_t>(1 + chaos() % opts.members)};
        if (sim.alive(victim))
          sim.crash(victim);
        else
          sim.restart(victim);
      }
      if (chaos() % 80 == 0) {
        auto a = member_id{static_cast<uint32_t>(1 + chaos() % opts.members)};
        auto rest = std::vector<member_id>{};
        for (auto id : sim.ids())
          if (id != a)
            rest.push_back(id);
        sim.partition({{a}, rest});
      }
      if (chaos() % 50 == 0)
        sim.heal();
      if (!sim.violations().empty())
        break;
    }
    INFO("seed " << seed << ": "
                  << (sim.violations().empty() ? "" : sim.violations().front()));
    REQUIRE(sim.violations().empty());
    // Without faults the group settles and every member catches up.
    sim.heal();
    sim.set_drop_probability(0);
    sim.set_delay(1, 1, false);
    for (auto id : sim.ids())
      if (!sim.alive(id))
        sim.restart(id);
    REQUIRE(commit_everywhere(sim, "final"));
    REQUIRE(sim.violations().empty());
    total_committed += sim.applied(m(1)).size();
    total_snapshots += sim.counters().snapshots_applied;
    total_terms += sim.leaders_by_term().size();
  }
  // The faults did bite: many elections, snapshot installs, yet progress.
  CHECK(total_committed > 200);
  CHECK(total_terms > 400);
  CHECK(total_snapshots > 0);
}

TEST_CASE("messages are inspectable field by field", "[raft]") {
  field_counter f;
  append_entries ae;
  inspect(f, ae);
  CHECK(f.fields == 5);
  f.fields = 0;
  vote_request vr;
  inspect(f, vr);
  CHECK(f.fields == 3);
  f.fields = 0;
  install_snapshot is;
  inspect(f, is);
  CHECK(f.fields == 2);
}
