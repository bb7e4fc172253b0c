#include "outputs/exporter.hpp"

#include <chrono>
#include <iostream>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include "outputs/metrics_page.hpp"
#include "outputs/stale_outputs.hpp"
#include "outputs/window_order.hpp"
#include "wire/codec.hpp"
#include "rules/rule_cache.hpp"
#include "tether/actors.hpp"

namespace tether::outputs {

namespace {

using stale_tick_atom = caf::atom_constant<caf::atom("tt_stale")>;

/// How often the exporter looks for series gone stale.
constexpr auto stale_check = std::chrono::seconds(1);

/// Queues one body for `views`, encoded by `encode`; a refusal is a bug (keys and
/// values come from the node itself) and is logged.
template <class Encode>
void export_views(remote_write_sender& sender, const std::vector<series_view>& views,
                  Encode encode) {
  std::string body;
  std::string error;
  if (!encode(views, body, error)) {
    std::cerr << "tether: remote write: cannot encode windows: " << error << std::endl;
    return;
  }
  sender.enqueue(std::move(body));
}

caf::behavior exporter(caf::event_based_actor* self,
                       std::shared_ptr<remote_write_sender> sender,
                       std::shared_ptr<rules::rule_cache> rules, uint32_t staleness_ms) {
  // A window repeated after a failover would be a duplicate or out-of-order sample
  // for the receiver.
  auto order = std::make_shared<window_order>();
  auto stale = std::make_shared<stale_outputs>(staleness_ms);
  self->delayed_send(self, stale_check, stale_tick_atom::value);
  return {
    [sender, rules, order, stale](window_atom, std::vector<series_view>& views) {
      order->filter(views, wire::now_ms());
      if (views.empty())
        return;
      stale->seen(views);
      auto set = rules ? rules->load() : nullptr;
      export_views(*sender, views, [&](auto& xs, auto& body, auto& error) {
        return encode_windows(xs, set.get(), body, error);
      });
    },
    [self, sender, rules, stale](stale_tick_atom) {
      auto now = wire::now_ms();
      auto gone = stale->expire(now);
      if (!gone.empty()) {
        auto set = rules ? rules->load() : nullptr;
        export_views(*sender, gone, [&](auto& xs, auto& body, auto& error) {
          return encode_stale_markers(xs, set.get(), now, body, error);
        });
      }
      self->delayed_send(self, stale_check, stale_tick_atom::value);
    },
  };
}

} // namespace

caf::actor spawn_exporter(caf::actor_system& sys,
                          std::shared_ptr<remote_write_sender> sender,
                          std::shared_ptr<rules::rule_cache> rules,
                          uint32_t staleness_ms) {
  return sys.spawn(exporter, std::move(sender), std::move(rules), staleness_ms);
}

} // namespace tether::outputs
