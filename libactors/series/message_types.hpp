#pragma once

#include <caf/fwd.hpp>

namespace tether::series {

/// Registers the message types of series/ that cross node boundaries and are not
/// registered by `tether::configure` itself: the slice snapshot of a handoff and the
/// shard interfaces of a handoff (`shard_import_actor`, `shard_handoff_actor`).
/// Call once per config, next to the other registrations.
void add_message_types(caf::actor_system_config& cfg);

} // namespace tether::series
