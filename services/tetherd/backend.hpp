#pragma once

// The gateway's window into the node's actors. This header includes neither CAF nor
// Beast: the Beast translation units stay light, the CAF ones stay out of I/O code.
// Callbacks run on CAF worker threads; callers post them to their own strand.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "events/event_log.hpp"
#include "tether/assignment.hpp"
#include "tether/node.hpp"
#include "tether/types.hpp"
#include "wire/keyed_batch.hpp"

namespace tether::rules {
class rule_set;
}

namespace tether::gateway {

/// The outcome of a request: `code == errc::none` or a code with a message.
struct status {
  errc code = errc::none;
  std::string message;

  explicit operator bool() const noexcept {
    return code == errc::none;
  }
};

using write_done = std::function<void(status, write_ack)>;
using read_done = std::function<void(status, series_view)>;
using subscribe_done = std::function<void(status, std::vector<series_view>)>;
/// Receives series whose windows closed; each view's `window` is the closed one.
using window_sink = std::function<void(std::vector<series_view>)>;
using table_done = std::function<void(status, assignment_table)>;

/// One producer session's actors: an ingest actor and a bridge actor that receives
/// window updates. Thread-safe; every call returns at once.
class session_backend {
public:
  virtual ~session_backend();

  virtual void write(wire::keyed_batch batch, write_done done) = 0;
  virtual void read(std::string key, read_done done) = 0;
  virtual void subscribe(std::vector<std::string> keys, subscribe_done done) = 0;

  /// Ends the session's actors; no callback runs after the pending ones.
  virtual void close() = 0;
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
  std::string node;
  uint32_t slice = 0;
};

using peers_done = std::function<void(status, std::vector<peer_state>)>;
using moves_done = std::function<void(status, moves_state)>;
using admin_done = std::function<void(status, uint64_t)>;

/// The node as the gateway sees it. Thread-safe.
class backend {
public:
  virtual ~backend();

  static std::unique_ptr<backend> make(node n);

  virtual const node_options& options() const = 0;

  /// The current rules; read once per batch.
  virtual std::shared_ptr<const rules::rule_set> rules() const = 0;

  /// Reloads the rules file; "" on success, else why it was refused.
  virtual std::string reload_rules() = 0;
  virtual node_stats stats() const = 0;

  /// Counts a write batch's outcome for /metrics (errc::none = acknowledged).
  virtual void count_batch(errc code) = 0;
  virtual bool ready() const = 0;

  /// Opens a session writing as `producer`; `on_window` receives window updates of
  /// its subscriptions.
  virtual std::shared_ptr<session_backend> open_session(std::string producer,
                                                        window_sink on_window)
    = 0;

  /// Reads the directory's current table.
  virtual void table(table_done done) = 0;

  /// Whether the node is a cluster member (else a standalone node).
  virtual bool clustered() const = 0;

  /// Every node this node knows, itself first (standalone: only itself).
  virtual void peers(peers_done done) = 0;

  /// The directory leader's moves (standalone: none).
  virtual void moves(moves_done done) = 0;

  /// Passes an operator request on to the directory leader; `done` gets the slices
  /// moved (drain, rebalance) or the slice's new epoch (move).
  virtual void admin(admin_request req, admin_done done) = 0;

  /// Reads a series without a producer session (operator API).
  virtual void read(std::string key, read_done done) = 0;

  /// This node's own replica of a series: its view of the key (unrouted, without
  /// waiting for a quorum) and the replica's role and stream position.
  struct local_read {
    series_view view;
    std::string replica; ///< "primary", "follower" or "none"
    uint64_t epoch = 0;  ///< position of the replica's last applied item
    uint64_t seq = 0;
  };
  using local_read_done = std::function<void(status, local_read)>;
  virtual void read_local(std::string key, local_read_done done) = 0;

  /// Every local series with a closed window and every local slice's series count,
  /// for /metrics.
  using scrape_done = std::function<void(status, std::vector<series_view>,
                                         std::vector<std::pair<uint32_t, uint64_t>>)>;
  virtual void scrape(scrape_done done) = 0;

  /// Writes a keyed batch of a remote-write request as this node's remote-write
  /// producer; `sequence` must come from next_remote_sequence().
  virtual void remote_write(wire::keyed_batch batch, write_done done) = 0;

  /// The next sequence of the remote-write producer: increasing across restarts
  /// (derived from the clock in microseconds).
  virtual uint64_t next_remote_sequence() = 0;

  /// The cluster events this node still holds whose sequence is above `after`.
  virtual std::vector<events::cluster_event> events_since(uint64_t after) const = 0;
};

} // namespace tether::gateway
