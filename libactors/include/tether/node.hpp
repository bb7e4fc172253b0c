#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tether/actors.hpp"
#include "tether/admin.hpp"
#include "tether/options.hpp"

namespace caf {
class actor_system;
}

namespace tether {

namespace rules {
class rule_set;
}

struct node_stats {
  uint64_t series = 0;
  uint64_t samples_applied = 0;
  uint64_t samples_late = 0;
  uint64_t windows_closed = 0;
  uint32_t primary_slices = 0;
  uint64_t batches_acked = 0;
  uint64_t near_answers = 0;     ///< forwarded writes a follower here answered
  int64_t input_series = 0;      ///< tracked while an input series limit is set
  bool exporting = false;        ///< remote-write export configured
  uint64_t export_queue = 0;     ///< batches waiting to be sent
  uint64_t export_sent = 0;
  uint64_t export_dropped = 0;   ///< queue full, retries exhausted, refused, shutdown
  std::vector<std::pair<errc, uint64_t>> batches_rejected; ///< codes with a count > 0
};

/// A running Tether node inside an `actor_system`: its directory, router and shards.
/// Copies share the same node. Thread-safe: every member may be called from any thread.
class node {
public:
  struct impl;

  explicit node(std::shared_ptr<impl> ptr);

  const node_options& options() const;

  /// The node's view of the sticky directory.
  directory_actor directory() const;

  /// Spawns an ingest actor that writes as `producer_id`. The actor ends with the
  /// last handle to it.
  ingest_actor open_producer(std::string producer_id) const;

  /// Counters of this node; a snapshot, safe from any thread.
  node_stats stats() const;

  /// Counts the outcome of a write batch (acknowledged, or refused with `code`).
  /// Thread-safe and lock-free: the gateway calls it once per batch.
  void count_batch(errc code);

  /// Reads the rules file again and, if it is valid, swaps the rules in for batches
  /// that arrive from now on; series state is kept. Returns "" on success, else why
  /// the file was refused (the old rules stay).
  std::string reload_rules();

  /// The rules in force (batches read them once each).
  std::shared_ptr<const rules::rule_set> rules() const;

  /// The node's operator interface (admin.hpp). Each call makes one; keep it.
  node_admin admin() const;

  /// A producer session that writes batches a gateway keyed (admin.hpp); window
  /// updates of its subscriptions go to `on_window`.
  std::shared_ptr<producer_session> open_session(std::string producer_id,
                                                 window_sink on_window) const;

  /// Sends every actor of the node an exit message.
  void shutdown();

private:
  friend struct node_admin::state;

  const std::shared_ptr<impl>& impl_of() const {
    return impl_;
  }

  std::shared_ptr<impl> impl_;
};

} // namespace tether
