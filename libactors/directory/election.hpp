#pragma once

// The decision of a failover election, as a pure function: which follower leads
// each slice whose primary failed, given where the followers said their replicas
// stand. The controller (controller.cpp) asks the questions and commits the table;
// the rules live here, where unit tests reach them (election.test.cpp).

#include <cstdint>
#include <map>
#include <vector>

#include "directory/position.hpp"
#include "tether/assignment.hpp"

namespace tether::directory {

/// The epoch an election of slice `a` fences and commits (and at which a primary
/// back from a pause leads what it still leads): two above the table's. A handoff
/// in flight when the primary failed (abandoned, or answered too late) may have
/// installed the slice on its target at the move's epoch, one above the table's;
/// that copy must be fenced like every other, or it refuses the elected primary at
/// an equal epoch and the slice stays unwritable.
uint64_t election_epoch(const slice_assignment& a);

/// One follower's answer: its member index in the table and where its replica of
/// `position.slice` stands.
struct election_answer {
  int32_t member = -1;
  replica_position position;
};

/// What an election decided, by slice id.
struct election_result {
  std::vector<uint32_t> elected;       ///< a new primary from a replica with state
  std::vector<uint32_t> started_empty; ///< no answering replica held state
  std::vector<uint32_t> unresolved;    ///< too few answers: asked again later
};

/// Decides the election of `slices` in `t` (the table the election started from,
/// modified in place) from `answers`, taking each elected slice's followers and
/// preferred primary from `plan` (the placement's table for after the failure).
///
/// A slice is decided only when more than n - q of its n replicas answered (q the
/// write quorum of the larger of n and `rf`): then an acknowledged write, which a
/// quorum applied, is on at least one of them. The answering replica that applied
/// the most of the stream (highest epoch, then sequence) leads; among equally far
/// ones, the plan's primary if it is one, else the one leading the fewest slices so
/// far, so that a failed node's slices spread over the survivors. If none of them
/// holds state no write was acknowledged, and one of them starts the slice empty
/// (`slice_assignment::empty`). A decided slice gets epoch `election_epoch`; an
/// unresolved one keeps its primary and epoch.
election_result decide_election(assignment_table& t, const assignment_table& plan,
                                const std::vector<uint32_t>& slices,
                                const std::vector<election_answer>& answers,
                                uint32_t rf);

/// The slices of `unsettled` (slice -> the epoch the table had for it when its
/// handoff ended without a known outcome) that `t` still has at that epoch: their
/// replicas must still elect where they stand. The others were settled meanwhile (an
/// election, a failover or a later move changed their epoch) and are removed.
std::vector<uint32_t> unsettled_slices(std::map<uint32_t, uint64_t>& unsettled,
                                       const assignment_table& t);

} // namespace tether::directory
