#include "routing/router.hpp"

#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace tether::routing {

const std::string& route_table::node_name(int32_t m) const {
  static const std::string none;
  if (m < 0 || static_cast<size_t>(m) >= members.size())
    return none;
  return members[static_cast<size_t>(m)].name;
}

route_table make_route_table(const assignment_table& table,
                             const std::string& node_name,
                             const std::vector<series::shard_actor>& shards) {
  route_table rt;
  rt.version = table.version;
  rt.local_node = node_name;
  rt.members = table.members;
  int32_t self_member = -1;
  for (size_t i = 0; i < table.members.size(); ++i)
    if (table.members[i].name == node_name)
      self_member = static_cast<int32_t>(i);
  auto count = static_cast<uint32_t>(shards.size());
  rt.slices.resize(table.slices.size());
  for (uint32_t s = 0; s < table.slices.size(); ++s) {
    auto& a = table.slices[s];
    auto& r = rt.slices[s];
    r.epoch = a.epoch;
    r.primary = a.primary;
    if (a.primary >= 0 && a.primary == self_member && count > 0)
      r.shard = shards[series::shard_of(s, count)];
  }
  return rt;
}

namespace {

struct router_state {
  static inline const char* name = "tether.router";
  router_config cfg;
  uint64_t version = 0;

  void publish(const assignment_table& t) {
    if (t.version <= version)
      return;
    version = t.version;
    cfg.cache->store(std::make_shared<const route_table>(
      make_route_table(t, cfg.node_name, cfg.shards)));
  }
};

using router_ptr = router_actor::stateful_pointer<router_state>;

router_actor::behavior_type router_behavior(router_ptr self, router_config cfg) {
  self->state.cfg = std::move(cfg);
  if (auto t = self->state.cfg.cache->load())
    self->state.version = t->version;
  self->request(self->state.cfg.directory,
                std::chrono::milliseconds(self->state.cfg.request_timeout_ms),
                subscribe_atom::value, caf::actor_cast<caf::actor>(self))
    .then([self](assignment_table& t) { self->state.publish(t); },
          [self](caf::error& err) { self->quit(err); });
  return {
    [self](update_atom, assignment_table& t) { self->state.publish(t); },
  };
}

} // namespace

router_actor spawn_router(caf::actor_system& sys, router_config cfg) {
  return sys.spawn(router_behavior, std::move(cfg));
}

} // namespace tether::routing
