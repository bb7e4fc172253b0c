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
/// Encoding runs on this actor, off the shards. Once a second it ends the series it
/// exported whose last window ended more than `staleness_ms` ago with staleness
/// markers (one body for all of them), once per series.
caf::actor spawn_exporter(caf::actor_system& sys,
                          std::shared_ptr<remote_write_sender> sender,
                          std::shared_ptr<rules::rule_cache> rules,
                          uint32_t staleness_ms);

} // namespace tether::outputs
