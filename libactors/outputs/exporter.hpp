#pragma once

#include <memory>

#include <caf/fwd.hpp>

#include "outputs/remote_write_sender.hpp"

namespace tether::rules {
class rule_cache;
}

namespace tether::outputs {

/// Spawns the node's exporter: it receives `(window_atom, std::vector<series_view>)`
/// from the shards for every closed window, encodes each message as one remote-write
/// body and queues it on `sender` (which drops the oldest when its queue is full).
/// Encoding runs on this actor, off the shards.
caf::actor spawn_exporter(caf::actor_system& sys,
                          std::shared_ptr<remote_write_sender> sender,
                          std::shared_ptr<rules::rule_cache> rules);

} // namespace tether::outputs
