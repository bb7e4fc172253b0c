#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include <caf/actor_addr.hpp>
#include <caf/io/middleman_actor.hpp>

#include "events/event_log.hpp"
#include "outputs/remote_write_sender.hpp"
#include "routing/ingest.hpp"
#include "routing/route_table.hpp"
#include "routing/router.hpp"
#include "series/input_tracker.hpp"
#include "shard/shard.hpp"
#include "supervision/supervisor.hpp"
#include "tether/node.hpp"

namespace tether::internal {
class peer_registry;
}

namespace tether {

/// How many cluster events a node keeps for its dashboard.
constexpr size_t event_ring_size = 512;

/// The actors and shared state of one node; private to the library (`node`,
/// `node_admin` and the producer sessions reach them).
struct node::impl {
  explicit impl(caf::actor_system& s) : sys(s) {
  }

  caf::actor_system& sys;
  node_options opts;
  directory_actor directory;
  /// Clustered nodes: membership, the directory member and controller (on
  /// directory nodes), and the local view of the directory.
  supervision::supervisor_actor supervisor;
  /// The middleman that carries cluster traffic over mutual TLS, when configured.
  caf::io::middleman_actor tls_middleman;
  /// With TLS: which certificate names stand behind each peer's node id.
  std::shared_ptr<internal::peer_registry> peer_names;
  /// Without TLS: the middleman actor the supervisor dials peers through.
  caf::io::middleman_actor plain_middleman;
  directory::replicated_directory_actor member;
  directory::controller_actor controller;
  std::vector<series::shard_actor> shards;
  routing::router_actor router;
  std::shared_ptr<routing::route_cache> cache;
  std::shared_ptr<series::node_counters> counters;
  std::shared_ptr<rules::rule_cache> rules;
  std::shared_ptr<series::input_counts> inputs;
  /// Cluster events this node saw (joins, failures, moves, elections), the latest
  /// `event_ring_size` of them.
  std::shared_ptr<events::event_log> events;
  /// Remote-write export of closed windows, when configured.
  std::shared_ptr<outputs::remote_write_sender> sender;
  caf::actor exporter;
  std::shared_ptr<const routing::ingest_context> ingest;
  /// The supervisor's config between spawning the shards and the router.
  std::unique_ptr<supervision::supervisor_config> supervisor_config;

  /// Sends every actor of the node an exit message.
  void shutdown_all();

  /// Producers handed out by open_producer, ended by shutdown. Pending request
  /// timeouts keep an actor alive, so dropping the last handle is not enough.
  std::mutex producers_mtx;
  std::vector<caf::actor_addr> producers;

  /// Whether the node can take writes: it has a table, and every slice whose
  /// primary is up routes to this node or to a node it is connected to. Slices of a
  /// member the directory declared down do not count against this node: it cannot
  /// change that, and it serves the others.
  bool ready() const {
    auto t = cache->load();
    if (!t || t->slices.empty())
      return false;
    for (auto& r : t->slices) {
      if (r.primary < 0)
        return false;
      auto m = static_cast<size_t>(r.primary);
      bool up = m < t->members.size() && t->members[m].up;
      if (up && !r.shard)
        return false;
    }
    return true;
  }
};

} // namespace tether
