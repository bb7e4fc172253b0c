#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tether/assignment.hpp"

/// Deterministic, sticky placement of slices on members (design invariant 4).
///
/// Pure functions over `assignment_table`: no actors, no clocks, no randomness. The
/// same input always yields the same plan, so every directory replica that applies
/// an operation to the same table computes the same result. No function mutates its
/// input; each returns a `placement_plan` holding the moves and the table after them.
///
/// Load model. A slice weighs `slice_weight(load, opts)` = 1 + series_cost * series
/// + rate_cost * samples_per_second (the constant 1 keeps empty slices placed
/// evenly: they are hash ranges that fill up later). A member's *replica load* is
/// the sum of the weights of every replica it holds, its *primary load* the sum over
/// the slices it leads. Its combined load, `member_load`, counts a primary
/// `primary_weight` times (default 1.5: the primary dedups, acks, emits windows and
/// feeds the replication stream; a follower only applies). `rebalance` brings both
/// the replica load and the primary load of every up member within the tolerance of
/// their means, which puts the combined load within the same tolerance for any
/// primary weight.
///
/// Moves and their cost. A `copy` ships a replica's state to a new member (the source
/// is always the slice's current primary) and then drops the replica on `from`; when
/// the role is `primary` it also needs a handoff. A `promote` turns the follower on
/// `to` into the primary and demotes the primary on `from` to a follower: a handoff
/// but no data. `rebalance` therefore fixes replica load with follower copies first
/// (copies without a handoff; a primary is copied only when no follower can help, as
/// with RF 1) and then fixes primary load with promotions only (no data at all).
///
/// Epochs. Every slice that a plan touches gets its epoch bumped exactly once, for
/// primary changes and for follower-only changes alike: replication fences followers
/// by the configuration number too, so a dropped follower must not keep acking the
/// stream as a quorum member. The table's version grows by one per non-empty plan; an
/// empty plan returns the input table unchanged.
///
/// Stickiness. Members are identified by name and never reordered or removed here;
/// replicas on a down member stay in the replica set until `restore_rf` replaces
/// them, so a member that comes back up under the same name before that still holds
/// its slices, and marking it up again changes nothing.
///
/// Thread safety: all functions are pure and may be called concurrently.
namespace tether::directory {

/// Observed load of one slice, as supervisors report it.
struct slice_load {
  uint64_t series = 0;             ///< output series alive in the slice
  double samples_per_second = 0;   ///< ingest rate into the slice
};

/// Tuning of the placement functions. The defaults suit 1024 slices and a few to a
/// few dozen members.
struct placement_options {
  /// A member is balanced when its load is within this fraction of the mean
  /// (default 10 %). Bounds: [0, 1].
  double tolerance = 0.10;
  /// Most moves in one plan (concurrent state transfers and handoffs). `restore_rf`
  /// bounds only its copies by it: failover promotions move no data and must not
  /// wait. Bounds: >= 1.
  uint32_t max_moves = 16;
  /// Weight of a primary replica relative to a follower in `member_load`. >= 1.
  double primary_weight = 1.5;
  /// Weight per live series of a slice (memory). >= 0.
  double series_cost = 1.0 / 1000;
  /// Weight per sample per second into a slice (CPU). >= 0.
  double rate_cost = 1.0 / 1000;
};

/// The role the moved replica has on its destination.
enum class replica_role : uint8_t { primary, follower };

/// What a move asks the supervisors to do.
enum class move_kind : uint8_t {
  copy,    ///< copy state from the primary to `to`, then drop the replica on `from`
           ///< (`from` = -1: a new replica)
  promote, ///< the follower on `to` becomes primary, the primary on `from` a follower
  drop,    ///< drop the follower on `from` with no replacement (`to` = -1)
};

/// One step of a plan. Members are indices into `assignment_table::members`.
struct move {
  uint32_t slice = 0;
  int32_t from = -1;
  int32_t to = -1;
  replica_role role = replica_role::follower;
  move_kind kind = move_kind::copy;

  friend bool operator==(const move& x, const move& y) {
    return x.slice == y.slice && x.from == y.from && x.to == y.to
           && x.role == y.role && x.kind == y.kind;
  }
  friend bool operator!=(const move& x, const move& y) { return !(x == y); }
};

/// The outcome of one placement operation.
struct placement_plan {
  std::vector<move> moves; ///< in the order they are applied to reach `table`
  assignment_table table;  ///< the input with every move applied
  /// True when the operation has nothing left to do: calling it again on `table`
  /// returns an empty plan. False when `max_moves` cut the plan short (call again
  /// once the moves are done) or when a drain is stuck for lack of members.
  bool complete = true;
};

/// Weight of a slice with the given load (see the namespace comment).
double slice_weight(const slice_load& load, const placement_options& opts);

/// Combined load of every member (index as in `table.members`): primaries count
/// `opts.primary_weight` times. Slices beyond `loads.size()` have zero load.
std::vector<double> member_load(const assignment_table& table,
                                const std::vector<slice_load>& loads,
                                const placement_options& opts);

/// Index of the member called `name`, or -1.
int32_t find_member(const assignment_table& table, const std::string& name);

/// Places `slice_count` slices on the up `members` from scratch: primary of slice s
/// on the (s mod n)-th up member, followers on the next RF-1 up members, so primary
/// counts and replica counts differ by at most one between members and the replicas
/// of a slice are distinct. RF is capped at the number of up members. Every epoch is
/// 1 and the version 1; the moves are `copy` from -1.
placement_plan initial_placement(const std::vector<member>& members,
                                 uint32_t slice_count, uint32_t replication_factor);

/// The cluster's first table, once every directory member asked to join: the
/// directory members first, in the configured order, then whoever else joined by
/// name, placed by `initial_placement`. Every name of `directory_members` must be
/// in `joined`.
assignment_table first_table(const std::vector<std::string>& directory_members,
                             const std::map<std::string, member>& joined,
                             uint32_t slice_count, uint32_t replication_factor);

/// Moves as few replicas as it takes (at most `opts.max_moves`) to bring the replica
/// load and the primary load of every up member within `opts.tolerance` of the mean,
/// e.g. after a member joined with nothing. Every move strictly reduces the spread,
/// so a balanced table gets an empty plan and repeated calls converge. Replicas on
/// down members are left to `restore_rf`.
placement_plan rebalance(const assignment_table& table,
                         const std::vector<slice_load>& loads,
                         const placement_options& opts = {});

/// Moves every replica off `member` (an index), least loaded eligible member first.
/// A primary is handed to its least loaded up follower (`promote`, no data), and the
/// demoted replica is then replaced by a new follower (`copy`); without an up
/// follower the primary is copied. A follower with no eligible destination (fewer
/// up members than RF) is dropped. Bounded by `opts.max_moves` (a primary's promote
/// and the copy of its demoted replica share a plan unless the budget leaves room
/// for the promote only); repeat until `complete`. Replicas of the member's slices
/// on other members stay where they are.
placement_plan drain(const assignment_table& table, int32_t member,
                     const std::vector<slice_load>& loads,
                     const placement_options& opts = {});

/// Restores availability and RF after members went down: every slice whose primary
/// is down promotes its least loaded up follower (not bounded), then replicas on down
/// members are replaced by followers on the least loaded up members holding no
/// replica of the slice, slices with the fewest up replicas first, at most
/// `opts.max_moves` copies. A slice with no up replica at all is left as it is: its
/// state lives nowhere else, and it returns with its members.
placement_plan restore_rf(const assignment_table& table,
                          const std::vector<slice_load>& loads,
                          const placement_options& opts = {});

/// One round of the controller's periodic balance: first the followers `restore_rf`
/// would copy onto up members (the replication factor comes first), and only when
/// there are none the moves of `rebalance`. Promotions are the election's business:
/// this plan makes none, and a slice whose primary is down gets no copy either (its
/// assignment stays as it is until an election decides it; while such a slice
/// exists nothing is rebalanced and the plan is not complete). A table that has no
/// slices yet (the cluster has not formed) gets an empty, complete plan.
placement_plan balance_round(const assignment_table& table,
                             const std::vector<slice_load>& loads,
                             const placement_options& opts = {});

/// What an operator's move of `slice` to member `name` does to `table`.
struct move_decision {
  enum class step {
    refuse,  ///< no such member or slice, or the member is down (`why`)
    already, ///< the member leads the slice already
    move,    ///< `plan`: one primary move, at the slice's epoch + 1
  } what = step::refuse;
  std::string why;
  placement_plan plan;
};

move_decision decide_move(const assignment_table& table, uint32_t slice,
                          const std::string& name);

/// How a drain of member `name` ends once its moves are done.
struct drain_end {
  enum class step {
    unknown,      ///< no member is called so
    incomplete,   ///< it still leads a slice: the drain failed
    already_down, ///< it is down already: nothing to record
    mark,         ///< `next`: the table with the member down and drained
  } what = step::unknown;
  assignment_table next;
};

drain_end end_drain(const assignment_table& table, const std::string& name);

} // namespace tether::directory
