#include "directory/directory.hpp"
#include "directory/subscribers.hpp"

#include "directory/placement.hpp"

#include <algorithm>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace tether {

const std::string& assignment_table::primary_name(uint32_t slice) const {
  static const std::string none;
  if (slice >= slices.size())
    return none;
  auto p = slices[slice].primary;
  if (p < 0 || static_cast<size_t>(p) >= members.size())
    return none;
  return members[static_cast<size_t>(p)].name;
}

namespace directory {

assignment_table initial_table(const directory_config& cfg) {
  return initial_placement(cfg.members, cfg.slice_count, cfg.replication_factor).table;
}

namespace {

struct directory_state {
  static inline const char* name = "tether.directory";
  assignment_table table;
  subscriber_list subscribers;
};

using directory_ptr = directory_actor::stateful_pointer<directory_state>;

directory_actor::behavior_type directory_behavior(directory_ptr self,
                                                  directory_config cfg) {
  self->state.table = initial_table(cfg);
  self->set_down_handler(
    [self](caf::down_msg& msg) { self->state.subscribers.drop(msg.source); });
  return {
    [self](read_atom) { return self->state.table; },
    [self](subscribe_atom, caf::actor& who) {
      self->state.subscribers.add(self, who);
      return self->state.table;
    },
  };
}

} // namespace

directory_actor spawn_directory(caf::actor_system& sys, directory_config cfg) {
  return sys.spawn(directory_behavior, std::move(cfg));
}

} // namespace directory
} // namespace tether
