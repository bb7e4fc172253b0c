#pragma once

// The gateway's window into the node's actors. This header includes neither CAF nor
// Beast: the Beast translation units stay light, the CAF ones stay out of I/O code.
// Callbacks run on CAF worker threads; callers post them to their own strand.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tether/admin.hpp"
#include "tether/assignment.hpp"
#include "tether/node.hpp"
#include "tether/types.hpp"
#include "wire/keyed_batch.hpp"

namespace tether::rules {
class rule_set;
}

namespace tether::gateway {

// The requests' outcomes, the cluster's state and the operator requests are the
// node's public types (tether/admin.hpp): status, peer_state, moves_state,
// admin_request, local_read, and their callbacks.

using tether::admin_done;
using tether::admin_request;
using tether::moves_done;
using tether::moves_state;
using tether::peer_state;
using tether::peers_done;
using tether::read_done;
using tether::status;
using tether::subscribe_done;
using tether::table_done;
using tether::window_sink;
using tether::write_done;

/// One producer session's actors (tether/admin.hpp).
using session_backend = producer_session;

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
  using local_read = tether::local_read;
  using local_read_done = tether::local_read_done;
  virtual void read_local(std::string key, local_read_done done) = 0;

  /// Every local series with a closed window and every local slice's series count,
  /// for /metrics.
  using scrape_done = tether::scrape_done;
  virtual void scrape(scrape_done done) = 0;

  /// Writes a keyed batch of a remote-write request as this node's remote-write
  /// producer; `sequence` must come from next_remote_sequence().
  virtual void remote_write(wire::keyed_batch batch, write_done done) = 0;

  /// The next sequence of the remote-write producer: increasing across restarts
  /// (derived from the clock in microseconds).
  virtual uint64_t next_remote_sequence() = 0;

  /// The cluster events this node still holds whose sequence is above `after`.
  virtual std::vector<cluster_event> events_since(uint64_t after) const = 0;
};

} // namespace tether::gateway
