#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "directory/raft/raft_node.hpp"
#include "directory/raft/raft_storage.hpp"

namespace tether::directory::raft {

/// Fault knobs and shape of a `sim_cluster`.
struct sim_options {
  /// Members, numbered 1..members.
  size_t members = 3;
  /// Seeds the transport's PRNG and, derived from it, every member's PRNG.
  uint64_t seed = 1;
  raft_config config;
  /// Each message is lost with this probability.
  double drop_probability = 0.0;
  /// Each message arrives after a delay drawn from [min_delay, max_delay] ticks
  /// (at least 1).
  uint32_t min_delay = 1;
  uint32_t max_delay = 1;
  /// Messages due in the same tick arrive in random rather than send order.
  bool reorder = false;
  /// A member compacts its log once it has applied this many entries past its
  /// snapshot (0: never).
  uint64_t compact_every = 0;
  /// Makes a member's storage, once per member at construction (restarts keep
  /// it). Default: a `memory_storage`. `restart_wiped` always gives the member a
  /// new, empty `memory_storage`.
  std::function<std::unique_ptr<raft_storage>(member_id)> make_storage;
};

/// Test fixture: a Raft group in one process over an in-memory transport.
///
/// Deterministic given `sim_options::seed`. Every member feeds a state machine that
/// records the applied entries (snapshots encode that record). After every step the
/// fixture checks the safety invariants and records any breach in `violations()`:
/// at most one leader per term; every member applies, at each index, the same entry
/// (state machine safety), which also means an applied entry never changes; a member
/// applies indexes in order without gaps; a member's commit index never decreases
/// except through a restart.
///
/// Every member writes through its own storage (`sim_options::make_storage`); a
/// restart builds a new `raft_node` from that storage, so it keeps exactly what was
/// persisted. `restart_wiped` restarts a member with empty storage, as a member
/// without durable state would come back. A member whose storage fails halts and is
/// treated as crashed (`counters().halts`) until restarted.
///
/// Not thread-safe.
class sim_cluster {
public:
  /// Counters of what went over the transport.
  struct stats {
    uint64_t sent = 0;
    uint64_t dropped = 0;
    uint64_t delivered = 0;
    uint64_t snapshots_sent = 0;
    uint64_t snapshots_applied = 0;
    uint64_t halts = 0;
  };

  explicit sim_cluster(sim_options opts) : opts_(std::move(opts)), rng_(opts_.seed) {
    for (size_t i = 1; i <= opts_.members; ++i)
      ids_.emplace_back(static_cast<uint32_t>(i));
    for (auto id : ids_) {
      storages_[id] = make_storage(id);
      nodes_.emplace(id, raft_node{id, ids_, opts_.config, seed_of(id),
                                   storages_[id].get()});
      machines_[id];
      alive_[id] = true;
    }
  }

  // -- access -----------------------------------------------------------------

  std::vector<member_id> ids() const {
    std::vector<member_id> result;
    for (auto& kvp : nodes_)
      result.push_back(kvp.first);
    return result;
  }

  raft_node& node(member_id id) {
    return nodes_.at(id);
  }

  raft_node& node(uint32_t id) {
    return node(member_id{id});
  }

  raft_storage& storage(member_id id) {
    return *storages_.at(id);
  }

  /// The member's storage for fault injection, if it is a `memory_storage`.
  memory_storage* memory(member_id id) {
    return dynamic_cast<memory_storage*>(storages_.at(id).get());
  }

  uint64_t now() const noexcept {
    return now_;
  }

  const stats& counters() const noexcept {
    return stats_;
  }

  bool alive(member_id id) const {
    return alive_.at(id);
  }

  /// The live leader with the highest term, if any.
  std::optional<member_id> leader() const {
    std::optional<member_id> result;
    raft::term best;
    for (auto& [id, n] : nodes_)
      if (alive_.at(id) && n.is_leader() && (!result || n.current_term() > best)) {
        result = id;
        best = n.current_term();
      }
    return result;
  }

  /// Number of live members that consider themselves leader.
  size_t leader_count() const {
    size_t result = 0;
    for (auto& [id, n] : nodes_)
      if (alive_.at(id) && n.is_leader())
        ++result;
    return result;
  }

  /// Entries the member's state machine has applied, index i at position i - 1.
  const std::vector<entry>& applied(member_id id) const {
    return machines_.at(id);
  }

  /// The commands (no-ops skipped) the member has applied, in order.
  std::vector<std::string> commands(member_id id) const {
    std::vector<std::string> result;
    for (auto& e : machines_.at(id))
      if (e.kind == entry_kind::command)
        result.push_back(e.command);
    return result;
  }

  /// Invariant breaches seen so far (empty when all is well).
  const std::vector<std::string>& violations() const noexcept {
    return violations_;
  }

  /// Which member led each term.
  const std::map<raft::term, member_id>& leaders_by_term() const noexcept {
    return leaders_by_term_;
  }

  // -- driving ----------------------------------------------------------------

  /// Proposes `command` to `id` and ships what that produces.
  std::optional<log_index> propose(member_id id, std::string command) {
    if (!alive_.at(id))
      return std::nullopt;
    auto result = nodes_.at(id).propose(std::move(command));
    drain(id);
    check_invariants();
    return result;
  }

  /// Proposes to the current leader, if there is one.
  std::optional<log_index> propose(std::string command) {
    if (auto l = leader())
      return propose(*l, std::move(command));
    return std::nullopt;
  }

  /// One tick: every live member ticks, then due messages are delivered.
  void tick() {
    ++now_;
    for (auto& [id, n] : nodes_)
      if (alive_[id]) {
        n.tick();
        drain(id);
      }
    deliver_due();
    check_invariants();
  }

  void run(uint64_t ticks) {
    for (uint64_t i = 0; i < ticks; ++i)
      tick();
  }

  /// Ticks until `pred()` holds or `max_ticks` have passed; returns `pred()`.
  template <class Predicate>
  bool run_until(Predicate pred, uint64_t max_ticks) {
    for (uint64_t i = 0; i < max_ticks && !pred(); ++i)
      tick();
    return pred();
  }

  // -- faults -----------------------------------------------------------------

  void set_drop_probability(double p) {
    opts_.drop_probability = p;
  }

  void set_delay(uint32_t min_delay, uint32_t max_delay, bool reorder) {
    opts_.min_delay = min_delay;
    opts_.max_delay = max_delay;
    opts_.reorder = reorder;
  }

  /// Drops every message from `a` to `b` (one direction).
  void block(member_id a, member_id b) {
    blocked_.emplace(a, b);
  }

  /// Drops every message between `a` and `b` (both directions).
  void block_link(member_id a, member_id b) {
    block(a, b);
    block(b, a);
  }

  /// Splits the group: messages pass only within a set; unlisted members are
  /// isolated.
  void partition(const std::vector<std::vector<member_id>>& groups) {
    group_.clear();
    partitioned_ = true;
    int g = 0;
    for (auto& members : groups) {
      for (auto m : members)
        group_[m] = g;
      ++g;
    }
  }

  /// Removes the partition and all blocked links.
  void heal() {
    partitioned_ = false;
    group_.clear();
    blocked_.clear();
  }

  /// Stops a member: it neither ticks nor receives; its volatile state is lost
  /// when it restarts.
  void crash(member_id id) {
    alive_[id] = false;
  }

  /// Restarts a crashed (or live) member: a new `raft_node` loads what its storage
  /// holds; its state machine starts empty and is rebuilt from the snapshot and the
  /// log.
  void restart(member_id id) {
    ++restarts_[id];
    alive_[id] = true;
    machines_[id].clear();
    nodes_.at(id) = raft_node{id, ids_, opts_.config, seed_of(id),
                              storages_.at(id).get()};
    commit_seen_[id] = nodes_.at(id).commit_index(); // volatile: may restart lower
    drain(id);
  }

  /// Restarts a member with empty storage: term 0, no vote, no log. Raft's safety
  /// does not survive this (it is what restarting without durable state means);
  /// tests use it to show what persistence prevents.
  void restart_wiped(member_id id) {
    storages_[id] = std::make_unique<memory_storage>();
    restart(id);
  }

  // -- snapshot state encoding (the fixture's state machine) ------------------

  static std::string encode(const std::vector<entry>& xs) {
    std::string out;
    for (auto& e : xs) {
      out += std::to_string(e.term.value);
      out += ' ';
      out += e.kind == entry_kind::noop ? 'n' : 'c';
      out += ' ';
      out += std::to_string(e.command.size());
      out += ':';
      out += e.command;
    }
    return out;
  }

  static std::vector<entry> decode(const std::string& in) {
    std::vector<entry> out;
    size_t pos = 0;
    while (pos < in.size()) {
      entry e;
      auto sp = in.find(' ', pos);
      e.term = raft::term{std::stoull(in.substr(pos, sp - pos))};
      e.kind = in[sp + 1] == 'n' ? entry_kind::noop : entry_kind::command;
      auto colon = in.find(':', sp + 3);
      auto len = std::stoull(in.substr(sp + 3, colon - sp - 3));
      e.command = in.substr(colon + 1, len);
      e.index = log_index{out.size() + 1};
      out.push_back(std::move(e));
      pos = colon + 1 + len;
    }
    return out;
  }

private:
  struct in_flight {
    uint64_t due;
    uint64_t order;
    message msg;
  };

  bool link_ok(member_id from, member_id to) const {
    if (blocked_.count({from, to}) > 0)
      return false;
    if (!partitioned_)
      return true;
    auto i = group_.find(from);
    auto j = group_.find(to);
    return i != group_.end() && j != group_.end() && i->second == j->second;
  }

  uint64_t seed_of(member_id id) {
    return opts_.seed * 1000003u + id.value + 7919u * restarts_[id];
  }

  std::unique_ptr<raft_storage> make_storage(member_id id) {
    if (opts_.make_storage)
      return opts_.make_storage(id);
    return std::make_unique<memory_storage>();
  }

  double uniform() {
    // Own mapping to [0, 1) rather than a std distribution: the same sequence with
    // every standard library.
    return static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0);
  }

  // Ships the member's outbox and applies what it committed; a member halted by
  // its storage counts as crashed.
  void drain(member_id id) {
    auto& n = nodes_.at(id);
    if (n.halted()) {
      if (alive_[id])
        ++stats_.halts;
      alive_[id] = false;
      n.take_outbox();
      return;
    }
    for (auto& msg : n.take_outbox()) {
      ++stats_.sent;
      if (std::holds_alternative<install_snapshot>(msg.payload))
        ++stats_.snapshots_sent;
      if (!link_ok(msg.from, msg.to) || uniform() < opts_.drop_probability) {
        ++stats_.dropped;
        continue;
      }
      auto lo = std::max<uint32_t>(1, opts_.min_delay);
      auto hi = std::max(lo, opts_.max_delay);
      uint64_t delay = lo + rng_() % (hi - lo + 1);
      uint64_t order = opts_.reorder ? rng_() : seq_++;
      queue_.push_back(in_flight{now_ + delay, order, std::move(msg)});
    }
    apply(id);
  }

  void deliver_due() {
    std::vector<in_flight> due;
    std::vector<in_flight> later;
    for (auto& x : queue_)
      (x.due <= now_ ? due : later).push_back(std::move(x));
    queue_ = std::move(later);
    std::stable_sort(due.begin(), due.end(), [](const auto& a, const auto& b) {
      return a.due != b.due ? a.due < b.due : a.order < b.order;
    });
    for (auto& x : due) {
      auto to = x.msg.to;
      if (!alive_.at(to) || !link_ok(x.msg.from, to)) {
        ++stats_.dropped;
        continue;
      }
      ++stats_.delivered;
      nodes_.at(to).receive(x.msg);
      drain(to);
    }
  }

  void violation(std::string what) {
    violations_.push_back("tick " + std::to_string(now_) + ": " + std::move(what));
  }

  void check_committed(member_id id, const entry& e) {
    auto [i, added] = committed_.emplace(e.index, e);
    if (!added && i->second != e)
      violation("member " + std::to_string(id.value) + " applied a different entry at "
                + std::to_string(e.index.value));
  }

  void apply(member_id id) {
    auto& n = nodes_.at(id);
    auto& sm = machines_[id];
    if (auto snap = n.take_snapshot_to_apply()) {
      ++stats_.snapshots_applied;
      auto xs = decode(snap->state);
      if (xs.size() != snap->last_index.value)
        violation("snapshot size mismatch on member " + std::to_string(id.value));
      if (xs.size() < sm.size())
        violation("snapshot moves member " + std::to_string(id.value) + " backwards");
      for (auto& e : xs)
        check_committed(id, e);
      sm = std::move(xs);
    }
    for (auto& e : n.take_committed()) {
      if (e.index.value != sm.size() + 1) {
        violation("member " + std::to_string(id.value) + " applied index "
                  + std::to_string(e.index.value) + " after "
                  + std::to_string(sm.size()));
        continue;
      }
      check_committed(id, e);
      sm.push_back(e);
    }
    if (opts_.compact_every > 0
        && sm.size() >= n.snapshot().last_index.value + opts_.compact_every)
      n.compact(log_index{sm.size()}, encode(sm));
    if (n.halted()) {
      ++stats_.halts;
      alive_[id] = false;
    }
  }

  void check_invariants() {
    for (auto& [id, n] : nodes_) {
      auto& seen = commit_seen_[id];
      if (n.commit_index() < seen)
        violation("commit index of member " + std::to_string(id.value)
                  + " went backwards");
      seen = n.commit_index();
      if (!n.is_leader())
        continue;
      auto [i, added] = leaders_by_term_.emplace(n.current_term(), id);
      if (!added && i->second != id)
        violation("two leaders in term " + std::to_string(n.current_term().value));
    }
  }

  sim_options opts_;
  std::mt19937_64 rng_;
  uint64_t now_ = 0;
  uint64_t seq_ = 0;
  std::vector<member_id> ids_;
  std::map<member_id, std::unique_ptr<raft_storage>> storages_;
  std::map<member_id, uint64_t> restarts_;
  std::map<member_id, raft_node> nodes_;
  std::map<member_id, std::vector<entry>> machines_;
  std::map<member_id, bool> alive_;
  std::vector<in_flight> queue_;
  std::set<std::pair<member_id, member_id>> blocked_;
  std::map<member_id, int> group_;
  bool partitioned_ = false;
  std::map<log_index, entry> committed_;
  std::map<raft::term, member_id> leaders_by_term_;
  std::map<member_id, log_index> commit_seen_;
  std::vector<std::string> violations_;
  stats stats_;
};

} // namespace tether::directory::raft
