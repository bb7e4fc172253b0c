#include "directory/raft/raft_node.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "directory/raft/raft_storage.hpp"
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

// Ticks `n` until its election timer fires and it asks for pre-votes, then lets
// `granter` grant one: with three members that is a majority, and `n` campaigns.
void win_pre_vote(raft_node& n, member_id granter) {
  std::optional<term> asked;
  for (int i = 0; i < 100 && !asked; ++i) {
    n.tick();
    for (auto& msg : n.take_outbox())
      if (auto* v = std::get_if<vote_request>(&msg.payload); v && v->pre_vote)
        asked = v->term;
  }
  REQUIRE(asked.has_value());
  n.receive(message{granter, n.self(), vote_reply{*asked, true, true}});
  REQUIRE(n.role() == role::candidate);
  REQUIRE(n.current_term() == *asked);
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

// A directory under /tmp, removed with everything in it at scope exit.
struct temp_dir {
  temp_dir() {
    std::string tmpl = "/tmp/tether-raft-node-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr)
      FAIL("mkdtemp failed");
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

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
  win_pre_vote(n, m(3));
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
  win_pre_vote(n, m(2));
  n.take_outbox();
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
  CHECK(total_terms > 300); // fewer than without pre-votes (over 400), still many
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
  CHECK(f.fields == 4);
  f.fields = 0;
  install_snapshot is;
  inspect(f, is);
  CHECK(f.fields == 2);
}

// -- durable state --------------------------------------------------------------

namespace {

std::vector<member_id> three() {
  return {m(1), m(2), m(3)};
}

// Delivers every message of `from`'s outbox addressed to `to`.
void deliver(raft_node& from, raft_node& to) {
  for (auto& msg : from.take_outbox())
    if (msg.to == to.self())
      to.receive(msg);
}

// Member `n` campaigns (a pre-vote granted by another member, outside the test's
// scenario), and its vote requests wait in its outbox.
void campaign(raft_node& n) {
  win_pre_vote(n, n.self() == m(1) ? m(3) : m(1));
}

// Member 1 wins its first term with member 2's vote; member 2 restarts, from its
// storage or with nothing; member 3, which heard from no one, campaigns in the
// same term and asks member 2. Returns whether member 3 won that term as well.
bool second_leader_in_a_term(bool keep_storage) {
  memory_storage s1, s2, s3, blank;
  raft_node n1{m(1), three(), raft_config{}, 11, &s1};
  raft_node n3{m(3), three(), raft_config{}, 33, &s3};
  std::optional<raft_node> n2;
  n2.emplace(m(2), three(), raft_config{}, 22, &s2);
  campaign(n1);
  deliver(n1, *n2);
  deliver(*n2, n1);
  REQUIRE(n1.is_leader());
  REQUIRE(s2.state().hard.voted_for == m(1));
  n2.reset(); // crash
  n2.emplace(m(2), three(), raft_config{}, 23, keep_storage ? &s2 : &blank);
  campaign(n3);
  REQUIRE(n3.current_term() == n1.current_term());
  deliver(n3, *n2);
  deliver(*n2, n3);
  return n3.is_leader() && n3.current_term() == n1.current_term();
}

} // namespace

TEST_CASE("a member restarted from its storage keeps term, vote and log",
          "[raft][storage]") {
  memory_storage store;
  std::optional<raft_node> n;
  n.emplace(m(1), three(), raft_config{}, 5, &store);
  n->receive(message{m(2), m(1), vote_request{term{5}, log_index{0}, term{0}}});
  n->receive(message{m(2), m(1),
                     append_entries{term{5}, log_index{0}, term{0},
                                    {entry{term{5}, log_index{1}, entry_kind::command,
                                           "kept"},
                                     entry{term{5}, log_index{2}, entry_kind::command,
                                           "also kept"}},
                                    log_index{1}}});
  REQUIRE(n->take_outbox().size() == 2);
  n.reset();
  n.emplace(m(1), three(), raft_config{}, 6, &store);
  CHECK(n->current_term() == term{5});
  CHECK(n->voted_for() == m(2));
  CHECK(n->last_index() == log_index{2});
  CHECK(n->stable_index() == log_index{2});
  CHECK(n->commit_index() == log_index{0}); // volatile: learnt again
  CHECK(n->log().back().command == "also kept");
  n->receive(message{m(3), m(1), vote_request{term{5}, log_index{2}, term{5}}});
  auto out = n->take_outbox();
  REQUIRE(out.size() == 1);
  CHECK(!std::get<vote_reply>(out[0].payload).granted);
}

TEST_CASE("a member restarted from its storage does not vote twice in a term",
          "[raft][storage]") {
  CHECK_FALSE(second_leader_in_a_term(true));
  // The same scenario without durable state elects two leaders in one term.
  CHECK(second_leader_in_a_term(false));
}

TEST_CASE("the vote is durable before the vote reply leaves", "[raft][storage]") {
  memory_storage store;
  raft_node n{m(1), three(), raft_config{}, 5, &store};
  store.fail_next_writes(1);
  n.receive(message{m(2), m(1), vote_request{term{4}, log_index{0}, term{0}}});
  CHECK(n.take_outbox().empty()); // no reply without a durable vote
  CHECK(n.halted());
  CHECK(n.failure().code() == storage_errc::injected);
  CHECK(store.state().hard == hard_state{});
  // A halted member ignores everything until it restarts.
  n.receive(message{m(3), m(1), vote_request{term{4}, log_index{0}, term{0}}});
  for (int i = 0; i < 50; ++i)
    n.tick();
  CHECK(n.take_outbox().empty());
  n.restart();
  CHECK(!n.halted());
  CHECK(n.current_term() == term{0});
  CHECK(!n.voted_for().has_value());
  n.receive(message{m(3), m(1), vote_request{term{4}, log_index{0}, term{0}}});
  auto out = n.take_outbox();
  REQUIRE(out.size() == 1);
  CHECK(std::get<vote_reply>(out[0].payload).granted);
  CHECK(store.state().hard == (hard_state{term{4}, m(3)}));
  // A higher term seen in a reply is stored even though nothing is sent ...
  n.receive(message{m(2), m(1), vote_reply{term{6}, false}});
  CHECK(n.take_outbox().empty());
  CHECK(store.state().hard == (hard_state{term{6}, std::nullopt}));
  // ... and a vote in a term already stored is stored too.
  n.receive(message{m(2), m(1), vote_request{term{6}, log_index{0}, term{0}}});
  REQUIRE(n.take_outbox().size() == 1);
  CHECK(store.state().hard == (hard_state{term{6}, m(2)}));
}

TEST_CASE("entries are durable before the append reply leaves", "[raft][storage]") {
  memory_storage store;
  raft_node n{m(1), three(), raft_config{}, 5, &store};
  auto ae = append_entries{term{2}, log_index{0}, term{0},
                           {entry{term{2}, log_index{1}, entry_kind::noop, ""},
                            entry{term{2}, log_index{2}, entry_kind::command, "a"},
                            entry{term{2}, log_index{3}, entry_kind::command, "b"}},
                           log_index{0}};
  // A torn write: one entry reaches the medium, then the write fails.
  store.tear_next_append(1);
  n.receive(message{m(2), m(1), ae});
  CHECK(n.take_outbox().empty());
  CHECK(n.halted());
  CHECK(store.state().entries.size() == 1);
  CHECK(store.state().hard.term == term{2}); // the term went first
  n.restart();
  CHECK(n.last_index() == log_index{1});
  // The leader retries; now the reply acknowledges entries that are stored.
  n.receive(message{m(2), m(1), ae});
  auto out = n.take_outbox();
  REQUIRE(out.size() == 1);
  auto& reply = std::get<append_reply>(out[0].payload);
  CHECK(reply.success);
  CHECK(reply.match_index == log_index{3});
  REQUIRE(store.state().entries.size() == 3);
  CHECK(store.state().entries[2].command == "b");
  // A conflicting entry from a newer leader replaces the stored suffix.
  n.receive(message{m(3), m(1),
                    append_entries{term{3}, log_index{1}, term{2},
                                   {entry{term{3}, log_index{2}, entry_kind::command,
                                          "c"}},
                                   log_index{0}}});
  REQUIRE(n.take_outbox().size() == 1);
  REQUIRE(store.state().entries.size() == 2);
  CHECK(store.state().entries[1].command == "c");
  CHECK(store.state().hard.term == term{3});
}

TEST_CASE("a leader counts its own entry only once it is stored", "[raft][storage]") {
  memory_storage store;
  std::optional<raft_node> n;
  n.emplace(m(1), std::vector<member_id>{m(1)}, raft_config{}, 7, &store);
  for (int i = 0; i < 40 && !n->is_leader(); ++i)
    n->tick();
  REQUIRE(n->is_leader());
  REQUIRE(n->propose("one").has_value());
  CHECK(n->commit_index() == log_index{2});
  CHECK(store.state().entries.size() == 2);
  store.fail_next_writes(1);
  CHECK(!n->propose("two").has_value()); // not stored: not committed, halted
  CHECK(n->commit_index() == log_index{2});
  CHECK(n->halted());
  CHECK(!n->is_leader());
  n->take_committed();
  // After a restart the single member commits its stored log again.
  n.reset();
  n.emplace(m(1), std::vector<member_id>{m(1)}, raft_config{}, 8, &store);
  CHECK(n->last_index() == log_index{2});
  for (int i = 0; i < 40 && !n->is_leader(); ++i)
    n->tick();
  REQUIRE(n->is_leader());
  auto committed = n->take_committed();
  REQUIRE(committed.size() == 3); // noop and "one" again, then the new noop
  CHECK(committed[1].command == "one");
}

TEST_CASE("a single member rebuilds snapshot and log from its storage",
          "[raft][storage]") {
  memory_storage store;
  std::optional<raft_node> n;
  n.emplace(m(1), std::vector<member_id>{m(1)}, raft_config{}, 9, &store);
  for (int i = 0; i < 40 && !n->is_leader(); ++i)
    n->tick();
  for (int i = 0; i < 6; ++i)
    n->propose("p" + std::to_string(i));
  REQUIRE(n->take_committed().size() == 7);
  REQUIRE(n->compact(log_index{4}, "state up to 4"));
  CHECK(store.state().snapshot.last_index == log_index{4});
  CHECK(store.state().entries.size() == 3);
  store.fail_next_writes(1);
  CHECK(!n->compact(log_index{6}, "state up to 6"));
  CHECK(n->halted());
  n.reset();
  n.emplace(m(1), std::vector<member_id>{m(1)}, raft_config{}, 10, &store);
  auto snap = n->take_snapshot_to_apply();
  REQUIRE(snap.has_value());
  CHECK(snap->state == "state up to 4");
  CHECK(n->commit_index() == log_index{4});
  for (int i = 0; i < 40 && !n->is_leader(); ++i)
    n->tick();
  auto committed = n->take_committed();
  REQUIRE(committed.size() == 4); // 5, 6, 7, then the new no-op
  CHECK(committed[0].command == "p3");
  CHECK(committed[2].command == "p5");
  // A storage that fails to load leaves the member halted.
  store.fail_next_load();
  n->restart();
  CHECK(n->halted());
  CHECK(n->failure().code() == storage_errc::corrupt);
  n->restart();
  CHECK(!n->halted());
}

namespace {

// Roles in `lose_scenario`: the leader, the follower that stores "x" with it, and
// the follower cut off before "x".
enum scenario_role { leader_role, follower_with_x, follower_without_x };

// Commits "x" on the leader and one follower while the third member is cut off;
// then restarts the member in role `restarted` (from its storage or wiped), crashes
// the one in role `crashed`, heals the network and lets the two survivors commit
// "after". Returns the survivors.
std::vector<member_id> lose_scenario(sim_cluster& sim, scenario_role restarted,
                                     scenario_role crashed, bool wiped) {
  REQUIRE(sim.run_until([&] { return sim.leader().has_value(); }, 200));
  sim.run(20);
  auto l = *sim.leader();
  std::vector<member_id> role_of{l};
  for (auto id : sim.ids())
    if (id != l)
      role_of.push_back(id);
  sim.block_link(role_of[leader_role], role_of[follower_without_x]);
  sim.block_link(role_of[follower_with_x], role_of[follower_without_x]);
  REQUIRE(sim.propose(l, "x").has_value());
  REQUIRE(sim.run_until([&] { return has_command(sim.commands(l), "x"); }, 10));
  sim.crash(role_of[restarted]);
  if (wiped)
    sim.restart_wiped(role_of[restarted]);
  else
    sim.restart(role_of[restarted]);
  sim.crash(role_of[crashed]);
  sim.heal();
  std::vector<member_id> survivors;
  for (auto id : sim.ids())
    if (id != role_of[crashed])
      survivors.push_back(id);
  auto done = [&] {
    for (auto id : survivors)
      if (!has_command(sim.commands(id), "after"))
        return false;
    return true;
  };
  for (int attempt = 0; attempt < 20 && !done(); ++attempt) {
    sim.propose("after");
    sim.run_until(done, 50);
  }
  REQUIRE(done());
  return survivors;
}

} // namespace

TEST_CASE("a committed entry survives any single member's restart in a "
          "3-member group",
          "[raft][storage]") {
  for (auto restarted : {leader_role, follower_with_x, follower_without_x})
    for (auto crashed : {leader_role, follower_with_x, follower_without_x}) {
      if (restarted == crashed)
        continue;
      for (uint64_t seed : {3u, 8u}) {
        INFO("restarted role " << restarted << ", crashed role " << crashed
                               << ", seed " << seed);
        sim_cluster sim{options(3, seed)};
        auto survivors = lose_scenario(sim, restarted, crashed, false);
        for (auto id : survivors)
          CHECK(has_command(sim.commands(id), "x"));
        CHECK(sim.violations().empty());
      }
    }
}

TEST_CASE("the same committed entry is lost if a member restarts without its "
          "storage",
          "[raft][storage]") {
  sim_cluster sim{options(3, 3)};
  auto survivors = lose_scenario(sim, follower_with_x, leader_role, true);
  // The survivors commit something else where "x" was committed.
  for (auto id : survivors)
    CHECK_FALSE(has_command(sim.commands(id), "x"));
  REQUIRE_FALSE(sim.violations().empty());
  CHECK(sim.violations().front().find("applied a different entry")
        != std::string::npos);
}

namespace {

// The random fault schedule of the safety tests; `storage_faults` adds failing
// and torn writes.
void chaos_run(sim_cluster& sim, uint64_t seed, size_t members, bool storage_faults) {
  std::mt19937_64 chaos{seed ^ 0x9e3779b97f4a7c15ull};
  int next_cmd = 0;
  for (int t = 0; t < 300; ++t) {
    sim.tick();
    if (chaos() % 3 == 0)
      sim.propose("c" + std::to_string(next_cmd++));
    if (chaos() % 60 == 0) {
      auto victim = member_id{static_cast<uint32_t>(1 + chaos() % members)};
      if (sim.alive(victim))
        sim.crash(victim);
      else
        sim.restart(victim);
    }
    if (storage_faults && chaos() % 25 == 0) {
      auto victim = member_id{static_cast<uint32_t>(1 + chaos() % members)};
      if (auto* store = sim.memory(victim)) {
        if (chaos() % 2 == 0)
          store->fail_next_writes(1);
        else
          store->tear_next_append(chaos() % 3);
      }
    }
    if (storage_faults && chaos() % 30 == 0)
      for (auto id : sim.ids())
        if (!sim.alive(id))
          sim.restart(id); // halted members come back
    if (chaos() % 80 == 0) {
      auto a = member_id{static_cast<uint32_t>(1 + chaos() % members)};
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
}

// Lets the group settle without faults and checks that everyone catches up.
void settle(sim_cluster& sim) {
  sim.heal();
  sim.set_drop_probability(0);
  sim.set_delay(1, 1, false);
  for (auto id : sim.ids()) {
    if (auto* store = sim.memory(id))
      store->clear_faults();
    if (!sim.alive(id))
      sim.restart(id);
  }
  REQUIRE(commit_everywhere(sim, "final"));
  REQUIRE(sim.violations().empty());
}

sim_options chaos_options(uint64_t seed) {
  sim_options opts;
  opts.members = seed % 4 == 0 ? 5 : 3;
  opts.seed = seed;
  opts.drop_probability = 0.15;
  opts.min_delay = 1;
  opts.max_delay = 4;
  opts.reorder = true;
  opts.compact_every = seed % 2 == 0 ? 6 : 0;
  return opts;
}

} // namespace

TEST_CASE("safety holds when storage writes fail or tear and members halt",
          "[raft][storage]") {
  uint64_t halts = 0;
  uint64_t committed = 0;
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    auto opts = chaos_options(seed);
    sim_cluster sim{opts};
    chaos_run(sim, seed, opts.members, true);
    INFO("seed " << seed << ": "
                 << (sim.violations().empty() ? "" : sim.violations().front()));
    REQUIRE(sim.violations().empty());
    settle(sim);
    halts += sim.counters().halts;
    committed += sim.applied(m(1)).size();
  }
  CHECK(halts > 50); // the faults did bite
  CHECK(committed > 100);
}

TEST_CASE("safety holds with file storage under drops, crashes and restarts",
          "[raft][storage]") {
  temp_dir tmp;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    auto opts = chaos_options(seed);
    auto dir = tmp.path + "/seed-" + std::to_string(seed);
    opts.make_storage = [dir](member_id id) -> std::unique_ptr<raft_storage> {
      file_storage_options fo;
      fo.sync = false; // a crash of the process, not of the machine
      return std::make_unique<file_storage>(dir + "/member-" + std::to_string(id.value),
                                            fo);
    };
    sim_cluster sim{opts};
    chaos_run(sim, seed, opts.members, false);
    INFO("seed " << seed << ": "
                 << (sim.violations().empty() ? "" : sim.violations().front()));
    REQUIRE(sim.violations().empty());
    settle(sim);
    CHECK(sim.counters().halts == 0);
    // Each member reloads from its files exactly what it held.
    for (auto id : sim.ids()) {
      auto term_before = sim.node(id).current_term();
      auto vote_before = sim.node(id).voted_for();
      auto snap_before = sim.node(id).snapshot().last_index;
      std::vector<entry> log_before{sim.node(id).log().begin(),
                                    sim.node(id).log().end()};
      sim.crash(id);
      sim.restart(id);
      auto& n = sim.node(id);
      CHECK(n.current_term() == term_before);
      CHECK(n.voted_for() == vote_before);
      CHECK(n.snapshot().last_index == snap_before);
      CHECK(std::equal(log_before.begin(), log_before.end(), n.log().begin(),
                       n.log().end()));
    }
    REQUIRE(commit_everywhere(sim, "after reload"));
    CHECK(sim.violations().empty());
  }
}

TEST_CASE("a member cut off for a while does not depose the leader when it returns",
          "[raft]") {
  raft_node n1{m(1), three(), raft_config{}, 11};
  raft_node n2{m(2), three(), raft_config{}, 22};
  raft_node n3{m(3), three(), raft_config{}, 33};
  std::vector<raft_node*> nodes{&n1, &n2, &n3};
  // Delivers every queued message; with `cut`, none to or from member 3.
  auto pump = [&](bool cut) {
    for (auto* from : nodes)
      for (auto& msg : from->take_outbox()) {
        if (cut && (from == &n3 || msg.to == m(3)))
          continue;
        for (auto* to : nodes)
          if (to->self() == msg.to)
            to->receive(msg);
      }
  };
  campaign(n1);
  for (int i = 0; i < 5 && !n1.is_leader(); ++i)
    pump(false);
  REQUIRE(n1.is_leader());
  auto t = n1.current_term();
  // Member 3 hears nothing for ten election timeouts: its timer fires again and
  // again, and every time it asks for pre-votes that nobody receives.
  for (int i = 0; i < 200; ++i) {
    for (auto* n : nodes)
      n->tick();
    pump(true);
  }
  CHECK(n3.current_term() == t); // without pre-votes it raised its term every time
  CHECK(n3.role() == role::follower);
  // Back: its pre-votes are refused (member 1 leads, member 2 hears it), and the
  // leader's appends bring it back as a follower. Nobody is deposed.
  for (int i = 0; i < 60; ++i) {
    for (auto* n : nodes)
      n->tick();
    pump(false);
  }
  CHECK(n1.is_leader());
  CHECK(n1.current_term() == t);
  CHECK(n3.leader() == m(1));
  auto idx = n1.propose("after");
  REQUIRE(idx.has_value());
  for (int i = 0; i < 10; ++i) { // the commit point reaches followers with a heartbeat
    for (auto* n : nodes)
      n->tick();
    pump(false);
  }
  CHECK(n3.commit_index() >= *idx);
}
