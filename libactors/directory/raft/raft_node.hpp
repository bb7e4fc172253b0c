#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "directory/raft/raft_storage.hpp"
#include "directory/raft/types.hpp"

namespace tether::directory::raft {

/// The role a member plays in its current term.
enum class role : uint8_t { follower, candidate, leader };

/// One member of a Raft group with a fixed member list (1, 3 or 5 members).
///
/// Pure and deterministic: no threads, clocks or I/O. The owner drives it with
/// `tick()` (logical time), `receive()` and `propose()`, then drains its outputs:
/// `take_outbox()` (messages to deliver), `take_snapshot_to_apply()` and
/// `take_committed()` (in that order: a snapshot replaces the state machine, the
/// committed entries then apply on top of it).
///
/// Guarantees (the Raft safety properties): at most one leader per term; an entry
/// once handed out by `take_committed()` on any member is the entry every member
/// hands out at that index; a leader commits by counting replicas only entries of
/// its own term (earlier entries commit with them).
///
/// Choices: pre-vote, no check-quorum. A member whose election timer fires first
/// asks whether a majority would vote for it at the next term, and raises its term
/// only if so; a member that heard from a leader within the shortest election
/// timeout, and the leader itself, say no. So a member cut off from the majority, or
/// one that merely missed heartbeats (delayed, starved), does not depose a leader
/// the others still hear. A leader cut off from the majority stays leader until it
/// hears a higher term, but it cannot commit anything. Each new leader appends a no-op entry so entries of
/// earlier terms commit without waiting for a client command.
///
/// Durability. Given a `raft_storage`, the member loads term, vote, log and
/// snapshot from it at construction and at `restart()`, and writes through it
/// synchronously: the call returns (the write is durable) before anything that
/// depends on it can leave the member. The core stays pure: it does no I/O itself,
/// only calls the interface, and the owner chooses the implementation.
/// - Term and vote are written before any message is queued in the outbox (every
///   message carries the term; a vote reply or vote request depends on the vote).
/// - New or replaced log entries are written before any message is queued: a
///   follower's append reply (success or not) and a leader's append entries. A
///   leader counts itself towards a commit quorum only for entries already written,
///   so a single-member group commits nothing that is not durable.
/// - A snapshot from the leader is written before its snapshot reply; `compact()`
///   writes its snapshot before it returns true.
/// - Anything else that changed (e.g. a higher term seen in a reply) is written at
///   the end of the `tick()`, `receive()` or `propose()` call that changed it.
/// At most one hard state write and one log write happen per call in the common
/// case. A failed write *halts* the member (`halted()`, `failure()`): it drops its
/// outbox, stops leading and ignores ticks, messages, proposals and compaction until
/// `restart()` reloads what the storage holds; the owner should restart it or stop.
/// Without a storage, state lives in memory only and `restart()` keeps it (a model
/// of perfect storage for tests).
///
/// Not thread-safe: one owner (an actor) calls it.
class raft_node {
public:
  /// Creates a follower. `members` must contain `self`; `seed` feeds the PRNG that
  /// randomises the election timeouts. Without `storage` the member starts in term 0
  /// with an empty log. With `storage` (not owned; it must outlive the member) it
  /// starts from what `storage->load` returns, as after `restart()`, or halts if
  /// that fails.
  raft_node(member_id self, std::vector<member_id> members, raft_config cfg,
            uint64_t seed, raft_storage* storage = nullptr);

  // -- driving ----------------------------------------------------------------

  /// Advances logical time by one tick: election timeouts and heartbeats.
  void tick();

  /// Handles one message addressed to this member.
  void receive(const message& msg);

  /// Appends `command` to the log if this member is the leader and returns its
  /// index; the entry is committed once a majority stores it. Returns nothing on a
  /// follower or candidate (ask `leader()` where to go).
  std::optional<log_index> propose(std::string command);

  /// Keeps a snapshot of the applied state up to `upto` and drops the log prefix
  /// it covers. `upto` must not exceed the last index handed out by
  /// `take_committed()`; returns false (and changes nothing) otherwise or when
  /// `upto` is not past the current snapshot.
  bool compact(log_index upto, std::string state);

  /// Models a crash and restart: drops the volatile state (role, leader, commit
  /// index, pending outputs, replication progress, a halt) and takes the persistent
  /// state (term, vote, log, snapshot) from the storage, or keeps the in-memory one
  /// without a storage. Afterwards `take_snapshot_to_apply()` yields the snapshot
  /// (if any) to rebuild the state machine, and committed entries are handed out
  /// again as the commit index is rediscovered.
  void restart();

  // -- outputs ----------------------------------------------------------------

  /// Messages to deliver, in the order produced.
  std::vector<message> take_outbox();

  /// Newly committed entries in index order (no-ops included: skip them).
  std::vector<entry> take_committed();

  /// A snapshot to load into the state machine, replacing its state.
  std::optional<raft::snapshot> take_snapshot_to_apply();

  // -- observers --------------------------------------------------------------

  member_id self() const noexcept {
    return self_;
  }
  raft::role role() const noexcept {
    return role_;
  }
  bool is_leader() const noexcept {
    return role_ == raft::role::leader;
  }
  raft::term current_term() const noexcept {
    return term_;
  }
  std::optional<member_id> voted_for() const noexcept {
    return voted_for_;
  }
  /// The leader of the current term as far as this member knows.
  std::optional<member_id> leader() const noexcept {
    return leader_;
  }
  log_index commit_index() const noexcept {
    return commit_;
  }
  log_index last_index() const noexcept;
  raft::term last_term() const noexcept;
  /// The entries after the snapshot.
  const std::deque<entry>& log() const noexcept {
    return log_;
  }
  const raft::snapshot& snapshot() const noexcept {
    return snapshot_;
  }
  const std::vector<member_id>& members() const noexcept {
    return members_;
  }
  /// True after a storage failure, until a `restart()` that loads successfully.
  bool halted() const noexcept {
    return static_cast<bool>(failure_);
  }
  /// The storage failure that halted the member (no error if it runs).
  const storage_error& failure() const noexcept {
    return failure_;
  }
  /// The last log index known to be durable (the last index without a storage).
  log_index stable_index() const noexcept {
    return stable_;
  }

private:
  struct progress {
    log_index next;
    log_index match;
  };

  // term of the entry at `i`, or nothing if `i` is compacted away or beyond the log
  std::optional<raft::term> term_at(log_index i) const;
  const entry& at(log_index i) const;
  size_t quorum() const noexcept {
    return members_.size() / 2 + 1;
  }
  void reset_election_timer();
  void become_follower(raft::term t, std::optional<member_id> leader);
  void start_pre_vote();
  /// Sends every other member a vote request (or pre-vote request) for term `t`.
  void request_votes(raft::term t, bool pre_vote);
  void start_election();
  void become_leader();
  void append_local(entry_kind kind, std::string command);
  void send(member_id to, payload p);
  void replicate_to(member_id peer);
  void broadcast_append();
  void advance_commit(log_index new_commit);
  void leader_update_commit();
  void truncate_from(log_index i);
  void reset_volatile();
  void load_from_storage();
  bool persist();
  bool halt(storage_error err);

  void handle(member_id from, const vote_request& x);
  void handle(member_id from, const vote_reply& x);
  void handle(member_id from, const append_entries& x);
  void handle(member_id from, const append_reply& x);
  void handle(member_id from, const install_snapshot& x);
  void handle(member_id from, const snapshot_reply& x);

  // configuration
  member_id self_;
  std::vector<member_id> members_;
  raft_config cfg_;
  std::mt19937_64 rng_;

  // persistent state
  raft_storage* storage_ = nullptr;
  raft::term term_;
  std::optional<member_id> voted_for_;
  std::deque<entry> log_; // entries snapshot_.last_index + 1 ...
  raft::snapshot snapshot_;
  bool hard_dirty_ = false; // term_ or voted_for_ changed since the last write
  log_index stable_;        // log_ up to here is in the storage
  storage_error failure_;   // set: halted

  // volatile state
  raft::role role_ = raft::role::follower;
  std::optional<member_id> leader_;
  log_index commit_;
  log_index applied_; // last index handed out (or covered by a handed out snapshot)
  uint32_t elapsed_ = 0;
  uint32_t timeout_ = 0;
  std::vector<member_id> votes_;
  /// Pre-votes granted for term `pre_term_` (empty: no pre-vote under way).
  std::vector<member_id> pre_votes_;
  raft::term pre_term_;
  std::map<member_id, progress> progress_;
  std::vector<message> outbox_;
  std::vector<entry> committed_;
  std::optional<raft::snapshot> snapshot_to_apply_;
};

} // namespace tether::directory::raft
