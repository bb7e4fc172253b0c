#pragma once

#include <caf/fwd.hpp>

namespace tether::series {

/// Registers the message types of series/ that cross node boundaries and are not
/// registered by `tether::configure` itself: the slice snapshot of a handoff and of
/// a seed, the shard interfaces of replication and handoff (`shard_replica_actor`,
/// `shard_import_actor`, `shard_handoff_actor`), the replication messages
/// (`replica_batch`, `replica_ack` and their parts) and the position query's
/// `replica_position` (with `std::vector<replica_position>` and
/// `std::vector<uint32_t>`).
/// Call once per config, next to the other registrations.
void add_message_types(caf::actor_system_config& cfg);

} // namespace tether::series
