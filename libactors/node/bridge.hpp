#pragma once
// The actor that lets callers without an actor of their own (a gateway's I/O
// threads) issue requests to the node's actors and receive window updates.

#include <functional>
#include <memory>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include "tether/admin.hpp"

namespace tether::outputs {
class window_order;
}

namespace tether::internal {

/// Work posted into a bridge actor, which may issue requests from it.
struct bridge_task {
  std::function<void(caf::event_based_actor*)> run;
};

/// Spawns a bridge: it runs `bridge_task`s and passes `(window_atom, views)` on to
/// `sink` through `order`, each window of a series once and in order
/// (outputs/window_order.hpp). Send it an exit message when done.
caf::actor spawn_bridge(caf::actor_system& sys, window_sink sink,
                        std::shared_ptr<outputs::window_order> order);

/// Posts `f` into `bridge`.
void post(const caf::actor& bridge, std::function<void(caf::event_based_actor*)> f);

/// The status of a failed request.
status status_of(const caf::error& err);

} // namespace tether::internal

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tether::internal::bridge_task)
