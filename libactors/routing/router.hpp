#pragma once

#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "routing/route_table.hpp"
#include "tether/actors.hpp"

namespace tether::routing {

/// Tells a router the shards of every node it can reach (its own included).
using remote_shards_atom = caf::atom_constant<caf::atom("tt_rshards")>;

/// The shards of one node, as its hello announced them (the same message tells the
/// shards where their followers are).
using remote_node = series::node_shards;

/// Keeps the node's route cache in step with the directory and the membership:
/// subscribes to the directory and publishes a new snapshot for every table version
/// and every change of the reachable nodes. A slice whose primary is on a node it
/// cannot reach gets no shard: writes to it fail with `unavailable` before anything
/// is sent.
using router_actor
  = caf::typed_actor<caf::reacts_to<update_atom, assignment_table>,
                     caf::reacts_to<remote_shards_atom, std::vector<remote_node>>>;

struct router_config {
  std::string node_name;
  directory_actor directory;
  std::vector<series::shard_actor> shards; ///< this node's shards, by index
  std::shared_ptr<route_cache> cache;
  uint32_t request_timeout_ms = 5000;
};

/// Builds the snapshot routers publish for `table` as seen from `node_name`.
route_table make_route_table(const assignment_table& table,
                             const std::string& node_name,
                             const std::vector<series::shard_actor>& shards);

/// The same with the shards of other nodes: slices led by a node in `remote` route
/// to its shard `slice % shards`; slices led by a node not listed get none.
route_table make_route_table(const assignment_table& table,
                             const std::string& node_name,
                             const std::vector<series::shard_actor>& shards,
                             const std::vector<remote_node>& remote);

router_actor spawn_router(caf::actor_system& sys, router_config cfg);

} // namespace tether::routing
