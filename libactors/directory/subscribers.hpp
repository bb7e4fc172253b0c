#pragma once

#include <algorithm>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <caf/send.hpp>

#include "tether/actors.hpp"

namespace tether::directory {

/// The actors that subscribed to a directory's table. Shared by every directory
/// implementation: subscribe once per actor, forget it when it goes down, push each
/// new table to all. Not thread-safe: owned by one actor's state.
class subscriber_list {
public:
  /// Adds `who` once; `monitor` is called for a new subscriber so that its down
  /// message reaches `drop`.
  template <class Self>
  void add(Self* self, const caf::actor& who) {
    if (!who || std::find(subs_.begin(), subs_.end(), who) != subs_.end())
      return;
    self->monitor(who);
    subs_.push_back(who);
  }

  void drop(const caf::actor_addr& who) {
    subs_.erase(std::remove_if(subs_.begin(), subs_.end(),
                               [&](const caf::actor& a) { return a.address() == who; }),
                subs_.end());
  }

  /// Sends `(update_atom, table)` to every subscriber.
  void push(const assignment_table& table) const {
    for (auto& sub : subs_)
      caf::anon_send(sub, update_atom::value, table);
  }

private:
  std::vector<caf::actor> subs_;
};

} // namespace tether::directory
