#include "series/message_types.hpp"

#include <caf/actor_system_config.hpp>

#include "series/shard.hpp"
#include "series/slice_snapshot.hpp"

namespace tether::series {

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<slice_snapshot>("tether.slice_snapshot");
  cfg.add_message_type<shard_import_actor>("tether.shard_import_actor");
  cfg.add_message_type<shard_handoff_actor>("tether.shard_handoff_actor");
}

} // namespace tether::series
