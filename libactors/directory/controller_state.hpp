#pragma once

// The controller's state and the steps its handlers are built from, shared by the
// files of the controller (internal to directory/):
//   controller_ops.cpp       - one operation at a time, failure decisions first; the
//                              leader's table read and proposed through Raft
//   controller_moves.cpp     - carrying out a placement plan (handoffs, rounds)
//   controller_elections.cpp - electing the primaries of slices that lost theirs
//   controller.cpp           - the handlers (join, rebalance, drain, move, suspect,
//                              load, report) and the actor's behaviour
// The decisions themselves are pure functions elsewhere in directory/: placement,
// election, membership (joins) and verdict (failures).

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <caf/typed_event_based_actor.hpp>

#include "directory/controller.hpp"
#include "directory/placement.hpp"
#include "directory/verdict.hpp"
#include "tether/assignment.hpp"

namespace tether::directory::internal {

using std::chrono::milliseconds;

struct controller_state {
  static inline const char* name = "tether.controller";

  controller_config cfg;
  uint32_t self_id = 0; ///< this member's Raft id, learned from its status
  bool busy = false;
  std::deque<std::function<void()>> queue; ///< operations waiting for their turn
  /// Failure decisions waiting: they run before the queue and between the rounds
  /// of a long operation (a drain, a rebalance), never after it.
  std::deque<std::function<void(std::function<void()>)>> urgent;
  /// Handoffs in flight; a failure of their source or target abandons them.
  struct handoff_wait {
    uint32_t slice;
    std::string from;
    std::string to;
    std::function<void(std::string)> abandon;
  };
  std::vector<handoff_wait> handoffs;
  /// Slices whose last handoff ended without a known outcome (abandoned, timed
  /// out, its source unreachable), with the epoch the table had for them then: the
  /// slice may be at its source or its target. An election among all its replicas
  /// settles where it stands; until one decides, every rebalance round asks again,
  /// while the table still has that epoch.
  std::map<uint32_t, uint64_t> unsettled;
  /// The table as last read, to tell which handoffs a failure concerns.
  assignment_table last_table;
  std::map<std::string, caf::actor> agents;
  /// Members that asked to join before the first table exists.
  std::map<std::string, member> joined;
  controller_report report;
  /// Whom each member suspects, and the failure verdict (verdict.hpp).
  suspicion_board suspicions{0};
  bool judging = false; ///< a failure decision is queued or running
  /// The latest reported load of every slice (index = slice id), for placement.
  std::vector<slice_load> loads;
  /// Continuations waiting for a delay (`later`), by id.
  std::map<uint64_t, std::function<void()>> parked;
  uint64_t next_parked = 0;
};

using controller_ptr = controller_actor::stateful_pointer<controller_state>;

// -- operations (controller_ops.cpp) ------------------------------------------------

/// Milliseconds of the steady clock.
int64_t now_ms();

/// Appends an event to the node's event log (and log).
void log_event(controller_ptr self, std::string kind, std::string text);

/// Runs the waiting failure decisions, each to its end, then `k`.
void yield_urgent(controller_ptr self, std::function<void()> k);

/// Runs `op` once no other operation is running; `op` calls `done` when finished.
void run(controller_ptr self, std::function<void(std::function<void()>)> op);

/// Runs a failure decision now if nothing runs, else at the running operation's
/// next round boundary.
void run_urgent(controller_ptr self, std::function<void(std::function<void()>)> op);

/// Abandons the handoffs from or to a member the suspicions already condemn.
void abandon_failing_handoffs(controller_ptr self);

milliseconds timeout_of(controller_ptr self);

/// Calls `k(table)` with the leader's table when this member leads, else `fail`.
void with_table(controller_ptr self, std::function<void(assignment_table)> k,
                std::function<void(caf::error)> fail);

/// Commits `t` through Raft; `k(version)` or `fail`.
void propose(controller_ptr self, assignment_table t, std::function<void(uint64_t)> k,
             std::function<void(caf::error)> fail);

placement_options placement_of(const controller_config& cfg);

/// Runs `k` after `delay`, as a message to this controller.
void later(controller_ptr self, milliseconds delay, std::function<void()> k);

// -- moves (controller_moves.cpp) ---------------------------------------------------

/// Carries out the moves of `plan` against `base`; `k(version, moved)`.
void execute(controller_ptr self, assignment_table base, placement_plan plan,
             std::function<void(uint64_t, uint64_t)> k,
             std::function<void(caf::error)> fail);

/// Rounds in which `converge` moves nothing and tries again before it gives up
/// (a handoff's source may not have the table of the round yet: "not served here").
constexpr int converge_retries = 20;
constexpr milliseconds converge_retry_delay{250};

/// Plans with `planner` and executes until the plan is complete, or until `retries`
/// rounds in a row moved nothing; `k(total moved)`, or `fail` with the last error.
void converge(controller_ptr self,
              std::function<placement_plan(const assignment_table&)> planner,
              uint64_t moved_so_far, std::function<void(uint64_t)> k,
              std::function<void(caf::error)> fail, int retries = converge_retries);

// -- elections (controller_elections.cpp) -------------------------------------------

/// Elects the primary of every slice in `slices`; `k(table, unresolved)`.
void elect(controller_ptr self, assignment_table t, placement_plan plan,
           std::vector<uint32_t> slices,
           std::function<void(assignment_table, std::vector<uint32_t>)> k);

/// Takes member `idx` back as new process `m` after an election of the slices its
/// previous process led; `k(version)`, or `fail` (retryable) while unresolved.
void rejoin_restarted(controller_ptr self, assignment_table t, int32_t idx, member m,
                      std::function<void(uint64_t)> k,
                      std::function<void(caf::error)> fail);

} // namespace tether::directory::internal
