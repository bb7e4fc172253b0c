#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/typed_actor.hpp>

#include "directory/controller.hpp"
#include "directory/directory_client.hpp"
#include "directory/replicated_directory.hpp"
#include "events/event_log.hpp"
#include "routing/router.hpp"
#include "shard/shard.hpp"
#include "tether/actors.hpp"

/// Membership of one node in a cluster: the supervisor actor.
///
/// Every clustered node runs one supervisor, published on the node's cluster port
/// (CAF's BASP). It contacts the seeds and every address it learns from them, and
/// exchanges a hello with each peer: name, gateway and cluster addresses, an
/// incarnation (start time; a restart under the same name has a higher one) and the
/// handles other nodes need (shards, directory member, controller, itself). A hello
/// is the only way handles travel, so every handle a node holds came over a direct
/// connection to its owner.
///
/// Liveness: peers send each other heartbeats every `heartbeat_ms`; a peer silent for
/// `suspect_ms` is *suspected* (reported, not yet acted on: failing a node is the
/// directory's decision, see the replication issue). A broken connection (CAF's down
/// message for the peer's supervisor) removes the peer's handles at once, and the
/// supervisor keeps trying its address.
///
/// The supervisor then feeds the node's other actors: the router gets the shards of
/// every connected node, the directory client the reachable directory members, the
/// local directory member its Raft peers, the controller every supervisor. It joins
/// the node to the directory (through any directory member's controller, retrying
/// until the table lists it) and carries out the controller's handoff orders.
///
/// Thread safety: an actor; handles may be used from any thread.
namespace tether::supervision {

using hello_atom = caf::atom_constant<caf::atom("tt_hello")>;
using heartbeat_atom = caf::atom_constant<caf::atom("tt_hb")>;
using start_atom = caf::atom_constant<caf::atom("tt_start")>;
using sup_tick_atom = caf::atom_constant<caf::atom("tt_stick")>;

/// One node as its hello describes it.
struct peer_info {
  std::string name;
  std::string gateway;      ///< HOST:PORT of HTTP and WebSocket
  std::string cluster;      ///< HOST:PORT of node-to-node traffic
  uint64_t incarnation = 0; ///< start time in µs
  caf::actor supervisor;
  std::vector<series::shard_actor> shards;
  uint32_t directory_id = 0; ///< 1..N on a directory member, else 0
  directory::replicated_directory_actor directory;
  directory::controller_actor controller;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, peer_info& x) {
  return f(x.name, x.gateway, x.cluster, x.incarnation, x.supervisor, x.shards,
           x.directory_id, x.directory, x.controller);
}

/// What the operator API shows of one node.
struct peer_status {
  std::string name;
  std::string gateway;
  std::string cluster;
  uint64_t incarnation = 0;
  uint32_t directory_id = 0;
  bool self = false;
  bool connected = false;
  bool suspect = false;
  int64_t last_heard_ms = -1; ///< ms since the last heartbeat; -1: never
  uint64_t series = 0;          ///< as of its last heartbeat
  uint64_t samples_applied = 0; ///< as of its last heartbeat
  uint64_t windows_closed = 0;  ///< as of its last heartbeat
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, peer_status& x) {
  return f(x.name, x.gateway, x.cluster, x.incarnation, x.directory_id, x.self,
           x.connected, x.suspect, x.last_heard_ms, x.series, x.samples_applied,
           x.windows_closed);
}

/// - `(hello_atom, mine)` -> (theirs, cluster addresses it knows): the handshake.
/// - `(heartbeat_atom, name, incarnation, series, samples applied, windows closed)`:
///   liveness and the sender's load.
/// - `(read_atom)` -> every node it knows, for the operator API.
/// - `(handoff_atom, slice, new epoch, destination)` -> series moved: the
///   controller's order to hand a slice this node leads over to another node.
/// - `(start_atom, cluster address)`: sent once by `spawn_node` after publishing.
/// - `(position_atom, slices)` -> where this node's replicas of those slices stand;
///   `(position_atom, slices, fences, version)`: the same, asked by the directory's
///   election for the table `version` it will propose, which fences the replicas
///   first (see `series::position_atom`).
/// - `(drain_atom, name)`, `(move_atom, slice, name)`, `(rebalance_atom)`,
///   `(report_atom)`: operator requests, passed on to the directory leader's
///   controller whichever node receives them.
using supervisor_actor = caf::typed_actor<
  caf::replies_to<series::position_atom, std::vector<uint32_t>>::with<
    std::vector<series::replica_position>>,
  caf::replies_to<series::position_atom, std::vector<uint32_t>, std::vector<uint64_t>,
                  uint64_t>::with<std::vector<series::replica_position>>,
  caf::replies_to<directory::drain_atom, std::string>::with<uint64_t>,
  caf::replies_to<directory::move_atom, uint32_t, std::string>::with<uint64_t>,
  caf::replies_to<directory::rebalance_atom>::with<uint64_t>,
  caf::replies_to<directory::report_atom>::with<directory::controller_report>,
  caf::replies_to<hello_atom, peer_info>::with<peer_info, std::vector<std::string>>,
  caf::reacts_to<heartbeat_atom, std::string, uint64_t, uint64_t, uint64_t, uint64_t>,
  caf::replies_to<read_atom>::with<std::vector<peer_status>>,
  caf::replies_to<directory::handoff_atom, uint32_t, uint64_t, std::string>::with<
    uint64_t>,
  caf::reacts_to<start_atom, std::string>, caf::reacts_to<sup_tick_atom>,
  caf::reacts_to<update_atom, assignment_table>>;

struct supervisor_config {
  std::string name;
  std::string gateway;
  std::vector<std::string> seeds;
  /// This process's incarnation (0: the start time in µs, taken at spawn).
  uint64_t incarnation = 0;
  /// The middleman that connects to peers: the node's TLS middleman with cluster
  /// TLS (node/tls_transport.hpp), else (when null) CAF's plain middleman.
  caf::io::middleman_actor connector;
  uint32_t heartbeat_ms = 100;
  uint32_t suspect_ms = 500;
  uint32_t request_timeout_ms = 5000;
  std::vector<series::shard_actor> shards;
  uint32_t directory_id = 0;
  directory::replicated_directory_actor directory;
  directory::controller_actor controller;
  directory::directory_client_actor client;
  routing::router_actor router;
  std::shared_ptr<series::node_counters> counters; ///< reported in heartbeats
  /// Where membership changes and directory table changes are recorded (optional).
  std::shared_ptr<events::event_log> events;
  /// With node-to-node TLS: the names of the certificate behind a node id (the
  /// node's own name for this node; empty for a node no connection vouches for).
  /// When set, a hello counts only if every handle in it lives on one node whose
  /// certificate carries the name it claims, and a heartbeat only from the
  /// supervisor that hello named. Empty without TLS: names are then taken on trust.
  std::function<std::vector<std::string>(const caf::node_id&)> certificate_names;
};

supervisor_actor spawn_supervisor(caf::actor_system& sys, supervisor_config cfg);

/// A new process's incarnation: the wall clock in µs (a restart has a higher one).
uint64_t new_incarnation();

/// Registers the supervisor's message types (call from `configure`).
void add_supervision_types(caf::actor_system_config& cfg);

} // namespace tether::supervision
