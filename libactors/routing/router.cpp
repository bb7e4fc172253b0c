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
  return make_route_table(table, node_name, shards, {});
}

route_table make_route_table(const assignment_table& table,
                             const std::string& node_name,
                             const std::vector<series::shard_actor>& shards,
                             const std::vector<remote_node>& remote) {
  // Shards of every member index, local first.
  std::vector<const std::vector<series::shard_actor>*> by_member(table.members.size(),
                                                                  nullptr);
  for (size_t i = 0; i < table.members.size(); ++i) {
    if (table.members[i].name == node_name) {
      by_member[i] = &shards;
      continue;
    }
    for (auto& r : remote)
      if (r.name == table.members[i].name && !r.shards.empty())
        by_member[i] = &r.shards;
  }
  route_table rt;
  rt.version = table.version;
  rt.local_node = node_name;
  rt.members = table.members;
  rt.slices.resize(table.slices.size());
  for (uint32_t s = 0; s < table.slices.size(); ++s) {
    auto& a = table.slices[s];
    auto& r = rt.slices[s];
    r.epoch = a.epoch;
    r.primary = a.primary;
    if (a.primary < 0 || static_cast<size_t>(a.primary) >= by_member.size())
      continue;
    auto* where = by_member[static_cast<size_t>(a.primary)];
    if (where != nullptr && !where->empty())
      r.shard = (*where)[series::shard_of(s, static_cast<uint32_t>(where->size()))];
  }
  return rt;
}

namespace {

struct router_state {
  static inline const char* name = "tether.router";
  router_config cfg;
  uint64_t version = 0;
  assignment_table table;
  std::vector<remote_node> remote;

  void publish(const assignment_table& t) {
    if (t.version <= version)
      return;
    version = t.version;
    table = t;
    rebuild();
  }

  void rebuild() {
    cfg.cache->store(std::make_shared<const route_table>(
      make_route_table(table, cfg.node_name, cfg.shards, remote)));
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
    [self](remote_shards_atom, std::vector<remote_node>& xs) {
      self->state.remote = std::move(xs);
      if (self->state.table.version > 0)
        self->state.rebuild();
    },
  };
}

} // namespace

router_actor spawn_router(caf::actor_system& sys, router_config cfg) {
  return sys.spawn(router_behavior, std::move(cfg));
}

} // namespace tether::routing
