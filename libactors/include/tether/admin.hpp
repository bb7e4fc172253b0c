#pragma once
// The node's operator interface and its producer sessions for a gateway. Neither
// needs CAF in the caller: every call returns at once and hands its outcome to a
// callback, which runs exactly once on one of the node's CAF threads (post it to
// your own thread or strand).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tether/assignment.hpp"
#include "tether/errc.hpp"
#include "tether/types.hpp"

namespace tether {

class node;

namespace wire {
struct keyed_batch;
}

/// The outcome of a request: `code == errc::none`, or a code with a message.
struct status {
  errc code = errc::none;
  std::string message;

  explicit operator bool() const noexcept {
    return code == errc::none;
  }
};

/// One node of the cluster as this node's supervisor sees it.
struct peer_state {
  std::string name;
  std::string gateway;
  std::string cluster;
  uint64_t incarnation = 0;
  uint32_t directory_id = 0; ///< 1..N on a directory member
  bool self = false;
  bool connected = false;
  bool suspect = false;
  int64_t last_heard_ms = -1;
  uint64_t series = 0;
  uint64_t samples_applied = 0;
  uint64_t windows_closed = 0;
};

/// The directory leader's account of slice moves.
struct moves_state {
  struct move {
    uint32_t slice = 0;
    std::string from;
    std::string to;
  };
  std::string leader; ///< the directory leader's name
  std::vector<move> moving;
  uint64_t done = 0;
  uint64_t failed = 0;
  std::string last_error;
  uint64_t loaded_slices = 0; ///< slices whose load the leader knows
  uint64_t loaded_series = 0; ///< series in those reports
  std::vector<uint64_t> slice_series; ///< per slice, as reported (may be empty)
};

/// An operator request to the directory leader.
struct admin_request {
  enum class op { drain, move, rebalance };
  op what = op::rebalance;
  std::string node;   ///< drain: the node to empty; move: the destination
  uint32_t slice = 0; ///< move: the slice
};

/// This node's own replica of a series: its view of the key (unrouted, without
/// waiting for a quorum) and the replica's role and stream position.
struct local_read {
  series_view view;
  std::string replica; ///< "primary", "follower" or "none"
  uint64_t epoch = 0;  ///< position of the replica's last applied item
  uint64_t seq = 0;
};

/// One cluster event as this node recorded it (a join, a lost or suspected peer, a
/// failure verdict, a drain, a move, a failover, a fence, a new directory leader).
struct cluster_event {
  uint64_t seq = 0;     ///< 1, 2, ... in the order recorded on this node
  int64_t unix_ms = 0;  ///< wall clock when recorded
  std::string kind;     ///< join, connect, lost, suspect, failed, drain, move,
                        ///< failover, fence, leader, election, unresolved, abandon
  std::string text;     ///< one line for an operator
};

using table_done = std::function<void(status, assignment_table)>;
using peers_done = std::function<void(status, std::vector<peer_state>)>;
using moves_done = std::function<void(status, moves_state)>;
/// The slices moved (drain, rebalance) or the slice's new epoch (move).
using admin_done = std::function<void(status, uint64_t)>;
using read_done = std::function<void(status, series_view)>;
using local_read_done = std::function<void(status, local_read)>;
/// Every local series with a closed window, and every local slice's series count
/// (sorted by slice).
using scrape_done = std::function<void(status, std::vector<series_view>,
                                       std::vector<std::pair<uint32_t, uint64_t>>)>;

/// The operator's view of one node: the cluster as it sees it, slice moves, reads
/// that need no producer. Get one from `node::admin()`; copies share it. Thread-safe.
class node_admin {
public:
  struct state;

  explicit node_admin(std::shared_ptr<state> st);

  /// Whether the node is a cluster member (else a standalone node).
  bool clustered() const;

  /// Whether the node can take writes: it has a table, and every slice whose primary
  /// is up routes to this node or to a node it is connected to.
  bool ready() const;

  /// The directory's current table.
  void table(table_done done) const;

  /// Every node this node knows, itself first (standalone: only itself).
  void peers(peers_done done) const;

  /// The directory leader's moves (standalone: none).
  void moves(moves_done done) const;

  /// Passes `req` to the directory leader (a standalone node answers UNAVAILABLE).
  void admin(admin_request req, admin_done done) const;

  /// Reads a series through the directory, as a producer would.
  void read(std::string key, read_done done) const;

  /// This node's own replica of `key`; INVALID_KEY for a key that is not canonical.
  void read_local(std::string key, local_read_done done) const;

  /// Every series of this node's shards with a closed window (for /metrics).
  void scrape(scrape_done done) const;

  /// The cluster events this node still holds whose sequence is above `after`.
  std::vector<cluster_event> events_since(uint64_t after) const;

private:
  std::shared_ptr<state> st_;
};

using write_done = std::function<void(status, write_ack)>;
using subscribe_done = std::function<void(status, std::vector<series_view>)>;
/// Receives series whose windows closed; each view's `window` is the closed one.
using window_sink = std::function<void(std::vector<series_view>)>;

/// One producer of a gateway: writes batches keyed on the gateway's own thread
/// (`wire::keyed_batch`, from the library's wire codec), reads and subscribes; window
/// updates of its subscriptions go to the sink it was opened with, each window of a
/// series once and in order. Thread-safe; every call returns at once. Embedders that
/// write samples use `node::open_producer` instead.
class producer_session {
public:
  virtual ~producer_session();

  virtual void write(wire::keyed_batch batch, write_done done) = 0;
  virtual void read(std::string key, read_done done) = 0;
  virtual void subscribe(std::vector<std::string> keys, subscribe_done done) = 0;

  /// Ends the session's actors; no callback runs after the pending ones.
  virtual void close() = 0;
};

} // namespace tether
