#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

/// Plain data of the Raft consensus core: identities, log entries and the messages
/// members exchange. Nothing here depends on CAF; every struct has an `inspect`
/// overload in the CAF style so an actor can ship it once the type is registered.
namespace tether::directory::raft {

namespace internal {

/// A strong integer type: distinct per `Tag`, ordered, no implicit conversions.
template <class Tag, class T>
struct strong_value {
  using value_type = T;
  T value = 0;

  constexpr strong_value() = default;
  constexpr explicit strong_value(T x) : value(x) {
    // nop
  }

  friend constexpr bool operator==(strong_value a, strong_value b) {
    return a.value == b.value;
  }
  friend constexpr bool operator!=(strong_value a, strong_value b) {
    return a.value != b.value;
  }
  friend constexpr bool operator<(strong_value a, strong_value b) {
    return a.value < b.value;
  }
  friend constexpr bool operator<=(strong_value a, strong_value b) {
    return a.value <= b.value;
  }
  friend constexpr bool operator>(strong_value a, strong_value b) {
    return a.value > b.value;
  }
  friend constexpr bool operator>=(strong_value a, strong_value b) {
    return a.value >= b.value;
  }

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, strong_value& x) {
    return f(x.value);
  }
};

struct member_id_tag {};
struct term_tag {};
struct log_index_tag {};

} // namespace internal

/// Identity of one member of a Raft group.
using member_id = internal::strong_value<internal::member_id_tag, uint32_t>;

/// A Raft term: grows monotonically; at most one leader is elected per term.
using term = internal::strong_value<internal::term_tag, uint64_t>;

/// Position in the replicated log; the first entry has index 1, 0 means "none".
using log_index = internal::strong_value<internal::log_index_tag, uint64_t>;

/// What a log entry carries.
enum class entry_kind : uint8_t {
  /// An opaque command for the state machine.
  command,
  /// Appended by every new leader to commit the entries of earlier terms; the state
  /// machine skips it, but it occupies an index.
  noop,
};

/// Text form of an `entry_kind` (CAF's `deep_to_string` picks it up).
inline std::string to_string(entry_kind x) {
  return x == entry_kind::noop ? "noop" : "command";
}

/// One entry of the replicated log.
struct entry {
  raft::term term;
  log_index index;
  entry_kind kind = entry_kind::command;
  std::string command;

  friend bool operator==(const entry& a, const entry& b) {
    return a.term == b.term && a.index == b.index && a.kind == b.kind
           && a.command == b.command;
  }
  friend bool operator!=(const entry& a, const entry& b) {
    return !(a == b);
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, entry& x) {
  return f(x.term, x.index, x.kind, x.command);
}

/// A snapshot of the applied state machine covering the log up to `last_index`.
struct snapshot {
  log_index last_index;
  raft::term last_term;
  std::string state;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot& x) {
  return f(x.last_index, x.last_term, x.state);
}

/// A candidate asks for a vote (RequestVote).
struct vote_request {
  raft::term term;
  log_index last_log_index;
  raft::term last_log_term;
  /// A pre-vote: would the receiver vote for the sender at `term` (its term + 1)?
  /// Neither side changes its term or vote for it.
  bool pre_vote = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, vote_request& x) {
  return f(x.term, x.last_log_index, x.last_log_term, x.pre_vote);
}

/// The answer to a `vote_request`; `term` is the voter's current term.
struct vote_reply {
  raft::term term;
  bool granted = false;
  bool pre_vote = false; ///< the answer to a pre-vote (`term`: the one asked about)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, vote_reply& x) {
  return f(x.term, x.granted, x.pre_vote);
}

/// The leader replicates entries and heartbeats (AppendEntries). The receiver
/// accepts only if its log holds `prev_log_index` with `prev_log_term`.
struct append_entries {
  raft::term term;
  log_index prev_log_index;
  raft::term prev_log_term;
  std::vector<entry> entries;
  log_index leader_commit;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, append_entries& x) {
  return f(x.term, x.prev_log_index, x.prev_log_term, x.entries, x.leader_commit);
}

/// The answer to an `append_entries`. On success `match_index` is the last index
/// known to agree with the leader; on failure `hint_index` is where the leader should
/// retry from (it never moves the leader's next index forward).
struct append_reply {
  raft::term term;
  bool success = false;
  log_index match_index;
  log_index hint_index;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, append_reply& x) {
  return f(x.term, x.success, x.match_index, x.hint_index);
}

/// The leader ships its snapshot to a follower whose next entry it has compacted.
struct install_snapshot {
  raft::term term;
  raft::snapshot snapshot;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, install_snapshot& x) {
  return f(x.term, x.snapshot);
}

/// The answer to an `install_snapshot`: the follower's log now agrees up to
/// `match_index`.
struct snapshot_reply {
  raft::term term;
  log_index match_index;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot_reply& x) {
  return f(x.term, x.match_index);
}

/// Any message of the protocol.
using payload = std::variant<vote_request, vote_reply, append_entries, append_reply,
                             install_snapshot, snapshot_reply>;

/// A routed message: sender, receiver and payload. The transport only needs
/// `from`/`to`; the CAF wrapper may send the payload structs on their own.
struct message {
  member_id from;
  member_id to;
  raft::payload payload;
};

/// Tunables of one member; times count ticks of logical time.
struct raft_config {
  /// Election timeout base N: each timeout is drawn uniformly from [N, 2N). Must be
  /// larger than `heartbeat_interval`.
  uint32_t election_timeout = 10;
  /// The leader sends append entries (maybe empty) to each follower every H ticks.
  uint32_t heartbeat_interval = 3;
  /// At most this many entries per `append_entries`.
  uint32_t max_entries_per_append = 64;
};

} // namespace tether::directory::raft
