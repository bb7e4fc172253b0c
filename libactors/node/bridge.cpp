#include "node/bridge.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "outputs/window_order.hpp"
#include "tether/tether.hpp"
#include "wire/codec.hpp"

namespace tether::internal {

namespace {

caf::behavior bridge_behavior(caf::event_based_actor* self, window_sink sink,
                              std::shared_ptr<outputs::window_order> order) {
  return {
    [self](bridge_task& t) { t.run(self); },
    [sink, order](window_atom, std::vector<series_view>& vs) {
      if (!sink)
        return;
      order->filter(vs, wire::now_ms());
      if (!vs.empty())
        sink(std::move(vs));
    },
  };
}

} // namespace

caf::actor spawn_bridge(caf::actor_system& sys, window_sink sink,
                        std::shared_ptr<outputs::window_order> order) {
  return sys.spawn(bridge_behavior, std::move(sink), std::move(order));
}

void post(const caf::actor& bridge, std::function<void(caf::event_based_actor*)> f) {
  caf::anon_send(bridge, bridge_task{std::move(f)});
}

status status_of(const caf::error& err) {
  return {code_of(err), message_of(err)};
}

} // namespace tether::internal
