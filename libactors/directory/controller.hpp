#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "directory/replicated_directory.hpp"
#include "events/event_log.hpp"
#include "tether/actors.hpp"

/// The directory's controller: the one place that decides membership and placement.
///
/// Every directory member's node runs a controller beside its Raft member; only the
/// controller whose member is the Raft leader acts, the others refuse with
/// `errc::unavailable` naming the leader. The controller turns operator and member
/// requests into placement plans (`directory/placement`), carries out their moves
/// through the nodes' supervisors (a live state handoff per slice) and commits the
/// resulting tables through Raft. It handles one request at a time.
///
/// Failure detection: supervisors report the peers they cannot hear (silent for
/// `tether.suspect-ms`, or their connection broke). The leader declares a member
/// failed when a majority of the other up members suspect it (so one peer's opinion
/// is never enough when there are two or more others), marks it down and lets
/// `restore_rf` promote a follower for each slice it led. A failed member that joins
/// again (a restart) is marked up; a drained member stays out until it joins again.
///
/// Thread safety: an actor; handles may be used from any thread.
namespace tether::directory {

/// A node asks to be a member: `(join_atom, member)` -> table version.
using join_atom = caf::atom_constant<caf::atom("tt_join")>;
/// Move every slice off a member: `(drain_atom, name)` -> slices moved.
using drain_atom = caf::atom_constant<caf::atom("tt_drain")>;
/// Move one slice's primary: `(move_atom, slice, name)` -> the slice's new epoch.
using move_atom = caf::atom_constant<caf::atom("tt_move")>;
/// Balance the members: `(rebalance_atom)` -> slices moved.
using rebalance_atom = caf::atom_constant<caf::atom("tt_rebal")>;
/// Asks a supervisor to hand a slice over: `(handoff_atom, slice, new epoch,
/// destination member name)` -> series moved.
using handoff_atom = caf::atom_constant<caf::atom("tt_handoff")>;
/// Tells the controller where the supervisors are: `(agents_atom, agents)`.
using agents_atom = caf::atom_constant<caf::atom("tt_agents")>;
/// The controller's report: `(report_atom)` -> controller_report.
using report_atom = caf::atom_constant<caf::atom("tt_report")>;
/// A supervisor's report of the peers it cannot hear: `(suspect_atom, reporter,
/// suspected names)`; an empty list withdraws its earlier suspicions.
using suspect_atom = caf::atom_constant<caf::atom("tt_suspect")>;
/// A supervisor's report of the load of the slices its node leads:
/// `(load_atom, reporter, reports)`.
using load_atom = caf::atom_constant<caf::atom("tt_load")>;
/// The controller's own timer: a leader rebalances when the members drift apart.
using balance_tick_atom = caf::atom_constant<caf::atom("tt_btick")>;
/// The controller's own timer: runs the continuation it parked under that id.
using resume_atom = caf::atom_constant<caf::atom("tt_resume")>;

/// A node's supervisor as the controller reaches it.
struct agent {
  std::string name;
  caf::actor handle; ///< answers `(handoff_atom, uint32_t, uint64_t, std::string)`
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, agent& x) {
  return f(x.name, x.handle);
}

/// The observed load of one slice on its primary.
struct slice_load_report {
  uint32_t slice = 0;
  uint64_t series = 0;             ///< output series in the slice
  double samples_per_second = 0;   ///< applied, averaged over the last report period
  /// Non-zero: the table epoch at which the table has named the reporter this
  /// slice's primary for a while without it serving the slice; the directory
  /// elects the slice's primary again, as for an unsettled handoff.
  uint64_t unserved_epoch = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, slice_load_report& x) {
  return f(x.slice, x.series, x.samples_per_second, x.unserved_epoch);
}

/// A slice move under way.
struct pending_move {
  uint32_t slice = 0;
  std::string from;
  std::string to;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pending_move& x) {
  return f(x.slice, x.from, x.to);
}

/// What a controller reports to the operator API.
struct controller_report {
  bool leader = false;
  std::string leader_name;          ///< the directory leader this member knows of
  std::vector<pending_move> moving; ///< moves whose handoff has not finished
  uint64_t moves_done = 0;          ///< slices moved since this controller started
  uint64_t moves_failed = 0;
  std::string last_error;           ///< the latest failed move, if any
  uint64_t failures_declared = 0;   ///< members this controller declared failed
  uint64_t loaded_slices = 0;       ///< slices with a load report (series or rate)
  uint64_t loaded_series = 0;       ///< series in the latest reports, all slices
  /// Series of every slice (index = slice id) as its primary last reported them;
  /// empty before the first report.
  std::vector<uint64_t> slice_series;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, controller_report& x) {
  return f(x.leader, x.leader_name, x.moving, x.moves_done, x.moves_failed,
           x.last_error, x.failures_declared, x.loaded_slices, x.loaded_series,
           x.slice_series);
}

using controller_actor = caf::typed_actor<
  caf::replies_to<join_atom, member>::with<uint64_t>,
  caf::replies_to<drain_atom, std::string>::with<uint64_t>,
  caf::replies_to<move_atom, uint32_t, std::string>::with<uint64_t>,
  caf::replies_to<rebalance_atom>::with<uint64_t>,
  caf::replies_to<report_atom>::with<controller_report>,
  caf::reacts_to<agents_atom, std::vector<agent>>, caf::reacts_to<balance_tick_atom>,
  caf::reacts_to<resume_atom, uint64_t>,
  caf::reacts_to<suspect_atom, std::string, std::vector<std::string>>,
  caf::reacts_to<load_atom, std::string, std::vector<slice_load_report>>>;

struct controller_config {
  /// The Raft member on this node.
  replicated_directory_actor member;
  /// Names of the directory members in id order (member id i + 1 = names[i]). The
  /// first table is committed once every one of them has joined.
  std::vector<std::string> directory_members;
  uint32_t slice_count = 1024;
  uint32_t replication_factor = 1;
  uint32_t max_moves = 16;
  double tolerance = 0.10;
  /// Timeout of a proposal and of each request to the member.
  uint32_t request_timeout_ms = 5000;
  /// Timeout of one slice handoff.
  uint32_t handoff_timeout_ms = 10000;
  /// How often a leader checks the balance (and retries failed moves); 0: never,
  /// rebalance only after a join or on request.
  uint32_t balance_interval_ms = 2000;
  /// A suspicion report counts for this long unless renewed (reporters renew it
  /// with every heartbeat).
  uint32_t suspicion_ttl_ms = 1000;
  /// Where elections, unresolved elections and abandoned handoffs are logged (may
  /// be null).
  std::shared_ptr<events::event_log> events;
  /// With node-to-node TLS (where an actor's node says which member it belongs
  /// to): a join, suspicion or load report counts only from the supervisor this
  /// node's supervisor knows under the name it claims, and the list of supervisors
  /// only from this node. Without, names are taken on trust.
  bool bind_members = false;
};

controller_actor spawn_controller(caf::actor_system& sys, controller_config cfg);

/// Registers the controller's message types (call from `configure`).
void add_controller_types(caf::actor_system_config& cfg);

} // namespace tether::directory
