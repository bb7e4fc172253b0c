#include "directory/directory_client.hpp"

#include <algorithm>
#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "directory/subscribers.hpp"

namespace tether::directory {

namespace {

struct client_state {
  static inline const char* name = "tether.directory_client";
  uint32_t timeout_ms = 5000;
  assignment_table table;
  std::vector<replicated_directory_actor> via;
  replicated_directory_actor current;
  subscriber_list subscribers;
};

using client_ptr = directory_client_actor::stateful_pointer<client_state>;

void take(client_ptr self, assignment_table& t) {
  auto& st = self->state;
  if (t.version <= st.table.version)
    return;
  st.table = std::move(t);
  st.subscribers.push(st.table);
}

/// Subscribes to the best member unless the current one is still listed.
void choose(client_ptr self) {
  auto& st = self->state;
  if (st.current
      && std::find(st.via.begin(), st.via.end(), st.current) != st.via.end())
    return;
  st.current = st.via.empty() ? replicated_directory_actor{} : st.via.front();
  if (!st.current)
    return;
  auto target = st.current;
  self
    ->request(target, std::chrono::milliseconds(st.timeout_ms),
              subscribe_atom::value, caf::actor_cast<caf::actor>(self))
    .then([self](assignment_table& t) { take(self, t); },
          [self, target](caf::error&) {
            // Try the next member on the next `via` message.
            if (self->state.current == target)
              self->state.current = nullptr;
          });
}

directory_client_actor::behavior_type client_behavior(client_ptr self,
                                                      uint32_t timeout_ms) {
  self->state.timeout_ms = timeout_ms;
  self->set_down_handler([self](caf::down_msg& msg) {
    self->state.subscribers.drop(msg.source);
  });
  return {
    [self](read_atom) { return self->state.table; },
    [self](subscribe_atom, caf::actor& who) {
      self->state.subscribers.add(self, who);
      return self->state.table;
    },
    [self](update_atom, assignment_table& t) { take(self, t); },
    [self](via_atom, std::vector<replicated_directory_actor>& xs) {
      self->state.via = std::move(xs);
      choose(self);
    },
  };
}

} // namespace

directory_client_actor spawn_directory_client(caf::actor_system& sys,
                                              uint32_t request_timeout_ms) {
  return sys.spawn(client_behavior, request_timeout_ms);
}

} // namespace tether::directory
