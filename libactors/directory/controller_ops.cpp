#include "directory/controller_state.hpp"

#include <set>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_response_promise.hpp>

#include "events/event_log.hpp"
#include "tether/tether.hpp"

namespace tether::directory::internal {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

void log_event(controller_ptr self, std::string kind, std::string text) {
  if (self->state.cfg.events)
    self->state.cfg.events->record(std::move(kind), std::move(text));
}

/// Runs the waiting failure decisions, each to its end, then `k`. Operations that
/// take long call it between their rounds: a failure is never decided after them.
void yield_urgent(controller_ptr self, std::function<void()> k) {
  auto& st = self->state;
  if (st.urgent.empty()) {
    k();
    return;
  }
  auto op = std::move(st.urgent.front());
  st.urgent.pop_front();
  op([self, k] { yield_urgent(self, k); });
}

/// Runs `op` once no other operation is running; `op` calls `done` when finished.
void run(controller_ptr self, std::function<void(std::function<void()>)> op) {
  auto& st = self->state;
  if (st.busy) {
    st.queue.emplace_back([self, op] { run(self, op); });
    return;
  }
  st.busy = true;
  op([self] {
    yield_urgent(self, [self] {
      auto& s = self->state;
      s.busy = false;
      if (!s.queue.empty()) {
        auto next = std::move(s.queue.front());
        s.queue.pop_front();
        next();
      }
    });
  });
}

/// Runs a failure decision now if nothing runs, else as soon as the running
/// operation reaches a round boundary.
void run_urgent(controller_ptr self, std::function<void(std::function<void()>)> op) {
  auto& st = self->state;
  if (!st.busy) {
    run(self, std::move(op));
    return;
  }
  st.urgent.push_back(std::move(op));
}

/// Abandons the handoffs from or to a member that the suspicions already condemn:
/// the operation that waits for them reaches its boundary at once and the failure
/// decision runs, instead of both waiting for the handoff timeout.
void abandon_failing_handoffs(controller_ptr self) {
  auto& st = self->state;
  if (st.handoffs.empty())
    return;
  auto failed = st.suspicions.failed(st.last_table, now_ms());
  if (failed.empty())
    return;
  std::set<std::string> names;
  for (auto i : failed)
    names.insert(st.last_table.members[static_cast<size_t>(i)].name);
  auto waits = st.handoffs; // abandon() edits the list
  for (auto& h : waits)
    if (names.count(h.from) > 0 || names.count(h.to) > 0) {
      auto why = (names.count(h.from) > 0 ? h.from : h.to) + " is failing";
      log_event(self, "abandon",
                "handoff of slice " + std::to_string(h.slice) + " from " + h.from + " to "
                  + h.to + " abandoned: " + why + " (a majority suspects it)");
      h.abandon(why + "; the handoff was abandoned");
    }
}

milliseconds timeout_of(controller_ptr self) {
  return milliseconds(self->state.cfg.request_timeout_ms);
}

/// Calls `k(table)` with the leader's table when this member leads, else `fail`.
void with_table(controller_ptr self, std::function<void(assignment_table)> k,
                std::function<void(caf::error)> fail) {
  auto& cfg = self->state.cfg;
  self->request(cfg.member, timeout_of(self), status_atom::value)
    .then(
      [self, k, fail](uint32_t id, uint32_t leader, uint64_t, uint64_t) {
        self->state.self_id = id;
        self->state.report.leader = leader == id;
        auto& names = self->state.cfg.directory_members;
        std::string who = leader == 0 ? std::string{"none yet"}
                          : leader <= names.size() ? names[leader - 1]
                                                   : std::to_string(leader);
        self->state.report.leader_name = leader == 0 ? std::string{} : who;
        if (leader != id) {
          fail(make_error(errc::unavailable,
                          "this node's directory member is not the leader; leader: "
                            + who));
          return;
        }
        self->request(self->state.cfg.member, timeout_of(self), read_atom::value)
          .then(
            [self, k](assignment_table& t) {
              self->state.last_table = t;
              k(std::move(t));
            },
                [fail](caf::error& err) { fail(err); });
      },
      [fail](caf::error& err) { fail(err); });
}

/// Commits `t` through Raft; `k(version)` or `fail`.
void propose(controller_ptr self, assignment_table t,
             std::function<void(uint64_t)> k, std::function<void(caf::error)> fail) {
  self->request(self->state.cfg.member, timeout_of(self), cas_atom::value,
                std::move(t))
    .then([k](uint64_t v) { k(v); }, [fail](caf::error& err) { fail(err); });
}

placement_options placement_of(const controller_config& cfg) {
  placement_options o;
  o.max_moves = cfg.max_moves;
  o.tolerance = cfg.tolerance;
  return o;
}

/// Runs `k` after `delay`, as a message to this controller.
void later(controller_ptr self, milliseconds delay, std::function<void()> k) {
  auto id = self->state.next_parked++;
  self->state.parked.emplace(id, std::move(k));
  self->delayed_send(self, delay, resume_atom::value, id);
}

} // namespace tether::directory::internal
