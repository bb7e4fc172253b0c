#pragma once

#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "tether/actors.hpp"

namespace tether::directory {

struct directory_config {
  std::vector<member> members; ///< initial members; the first is this node
  uint32_t slice_count = 1024;
  uint32_t replication_factor = 1;
};

/// Builds the initial table with `initial_placement`: primaries and replicas spread
/// evenly, replicas of a slice on distinct members, every epoch 1.
assignment_table initial_table(const directory_config& cfg);

/// Spawns the directory. It serves the table and pushes every new version to its
/// subscribers. This single-member form holds the table in memory; the replicated
/// form keeps the same interface.
directory_actor spawn_directory(caf::actor_system& sys, directory_config cfg);

} // namespace tether::directory
