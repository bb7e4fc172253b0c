#include "outputs/exporter.hpp"

#include <iostream>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include "outputs/metrics_page.hpp"
#include "outputs/window_order.hpp"
#include "wire/codec.hpp"
#include "rules/rule_cache.hpp"
#include "tether/actors.hpp"

namespace tether::outputs {

namespace {

caf::behavior exporter(caf::event_based_actor*,
                       std::shared_ptr<remote_write_sender> sender,
                       std::shared_ptr<rules::rule_cache> rules) {
  // A window repeated after a failover would be a duplicate or out-of-order sample
  // for the receiver.
  auto order = std::make_shared<window_order>();
  return {
    [sender, rules, order](window_atom, std::vector<series_view>& views) {
      order->filter(views, wire::now_ms());
      if (views.empty())
        return;
      std::string body;
      std::string error;
      auto set = rules ? rules->load() : nullptr;
      if (!encode_windows(views, set.get(), body, error)) {
        // Keys and values come from the node itself; a refusal is a bug.
        std::cerr << "tether: remote write: cannot encode windows: " << error
                  << std::endl;
        return;
      }
      sender->enqueue(std::move(body));
    },
  };
}

} // namespace

caf::actor spawn_exporter(caf::actor_system& sys,
                          std::shared_ptr<remote_write_sender> sender,
                          std::shared_ptr<rules::rule_cache> rules) {
  return sys.spawn(exporter, std::move(sender), std::move(rules));
}

} // namespace tether::outputs
