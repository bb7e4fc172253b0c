#pragma once

#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "routing/route_table.hpp"
#include "tether/actors.hpp"

namespace tether::routing {

/// Keeps the node's route cache in step with the directory: subscribes to it and
/// publishes a new snapshot for every table version.
using router_actor = caf::typed_actor<caf::reacts_to<update_atom, assignment_table>>;

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

router_actor spawn_router(caf::actor_system& sys, router_config cfg);

} // namespace tether::routing
