#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "requests/deadlines.hpp"
#include "rules/rule_cache.hpp"
#include "shard/messages.hpp"
#include "series/slice_snapshot.hpp"
#include "tether/actors.hpp"

namespace tether::events {
class event_log;
} // namespace tether::events

namespace tether::series {

struct input_counts;

using tick_atom = caf::atom_constant<caf::atom("tt_tick")>;
using export_atom = caf::atom_constant<caf::atom("tt_export")>;
using import_atom = caf::atom_constant<caf::atom("tt_import")>;
using abort_atom = caf::atom_constant<caf::atom("tt_abort")>;
using replicate_atom = caf::atom_constant<caf::atom("tt_repl")>;
using seed_atom = caf::atom_constant<caf::atom("tt_seed")>;
using node_shards_atom = caf::atom_constant<caf::atom("tt_nshards")>;
using level_atom = caf::atom_constant<caf::atom("tt_level")>;
using replica_flush_atom = caf::atom_constant<caf::atom("tt_rflush")>;
/// Marks a read of the shard's own replica: `(read_atom, local_atom, key_route)`.
using local_atom = caf::atom_constant<caf::atom("tt_local")>;

/// A node-local actor that hosts some of the node's slices: slices are the unit of
/// placement, shards the unit of execution (one per core by default). Slice `s` lives
/// on shard `s % shard_count` of the node that holds it.
/// Subscribers receive `(window_atom, std::vector<series_view>)` when windows close:
/// each view carries the window that closed. This is the part routing uses, plus
/// two questions about the shard's own replicas: `(position_atom, slices)` (see
/// `replica_position`; ask shard `slice % shards` of a node; with a vector of
/// epochs and the table version the election proposes, its fencing form, see
/// `position_atom`) and
/// `(read_atom, local_atom, key)` -> (the replica's view of the key, its position),
/// unrouted and without waiting for a quorum (`found == false` without a replica).
/// A spawned shard also handles the messages of `shard_replica_actor` and of a
/// handoff (`shard_handoff_actor`).
///
/// With replication (a slice whose table entry lists followers), a write range, a
/// read and a window close are answered or emitted only once a write quorum of the
/// slice's replicas has applied them (see `shard_replica_actor`).
using shard_actor = caf::typed_actor<
  caf::replies_to<write_atom, shard_write>::with<shard_write_result>,
  caf::replies_to<read_atom, key_route>::with<series_view>,
  caf::replies_to<read_atom>::with<shard_scrape>,
  caf::replies_to<subscribe_atom, std::vector<key_route>, caf::actor>::with<
    std::vector<series_view>>,
  caf::reacts_to<update_atom, assignment_table>, caf::reacts_to<tick_atom>,
  caf::replies_to<position_atom, std::vector<uint32_t>>::with<
    std::vector<replica_position>>,
  caf::replies_to<position_atom, std::vector<uint32_t>, std::vector<uint64_t>,
                  uint64_t>::with<std::vector<replica_position>>,
  caf::replies_to<read_atom, local_atom, key_route>::with<series_view,
                                                          replica_position>>;

/// The shards of one node, by index, as its hello announced them.
struct node_shards {
  std::string name;
  std::vector<shard_actor> shards;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_shards& x) {
  return f(x.name, x.shards);
}

/// A shard as a replica of slices led elsewhere: the replication protocol between
/// the primary's shard and its followers' shards (same index on every node).
///
/// - `(replicate_atom, replica_batch)` -> one `replica_ack` per slice in the batch:
///   a follower applies each slice's items in order while they continue its
///   position, and refuses the rest (stale epoch, gap, no replica).
/// - `(seed_atom, slice_snapshot)` -> `replica_ack`: installs (or replaces) the
///   follower replica from the primary's snapshot at its position. Refused when
///   the snapshot's epoch is below the highest the shard knows for the slice, when
///   the shard leads the slice at that epoch or later, and when it would take the
///   replica back within the same epoch (`ack_code::ahead`).
/// - `(node_shards_atom, nodes)`: the shards of every connected node (the
///   supervisor sends it on every membership change): where followers are.
/// - `(replica_flush_atom)`: sent by a shard to itself after a write queued items
///   for its followers; sends what queued up meanwhile, one message per follower.
/// - `(sweep_atom)`: sent by a shard to itself while batches to followers wait for
///   their answers: answers the overdue ones with a timeout (`requests::deadlines`).
/// - `(level_atom, slice)`: sent by a shard to itself after an import, so that the
///   new primary's first item reaches the old primary after the import's reply.
/// - `(subscribe_atom, local_atom, keys, sink)`: a primary shares a subscription to
///   keys of replicated slices with its followers (seeds carry the subscribers
///   too), so that a promoted follower emits to the same subscribers. Registers
///   and monitors the sink here; forwards nothing, answers nothing.
using shard_replica_actor = shard_actor::extend<
  caf::replies_to<replicate_atom, replica_batch>::with<replica_acks>,
  caf::replies_to<seed_atom, slice_snapshot>::with<replica_ack>,
  caf::reacts_to<node_shards_atom, std::vector<node_shards>>,
  caf::reacts_to<level_atom, uint32_t>,
  caf::reacts_to<replica_flush_atom>,
  caf::reacts_to<requests::sweep_atom>,
  caf::reacts_to<subscribe_atom, local_atom, std::vector<key_route>, caf::actor>>;

/// A shard as the destination of a slice handoff.
///
/// `(import_atom, slice_snapshot)` installs the slice at the snapshot's epoch and
/// replies with its number of series: from then on the shard takes writes at that
/// epoch, before any directory table names it, closes the slice's open windows
/// (end + lateness) and sends them to the snapshot's subscribers, whom it monitors.
/// It refuses (errc::unavailable) a slice it is exporting, holds at a higher epoch,
/// holds non-empty at the same epoch, moved away at the same or a higher epoch, or
/// knows fenced at the same or a higher epoch (a table, an election, its replica:
/// the handoff was overtaken), and a snapshot that `check` rejects (errc::internal).
///
/// `(abort_atom, slice, epoch)` withdraws an import whose reply the exporter did
/// not get in time: the shard drops the slice if it holds it at exactly `epoch` and
/// no directory table names it the slice's primary at that epoch or later.
using shard_import_actor = shard_replica_actor::extend<
  caf::replies_to<import_atom, slice_snapshot>::with<uint64_t>,
  caf::reacts_to<abort_atom, uint32_t, uint64_t>>;

/// The whole interface of a shard, as `spawn_shard` returns it: routing's
/// `shard_actor`, the import side and the export side of a slice handoff.
///
/// `(export_atom, slice, new_epoch, dest)` moves a slice this shard serves to `dest`
/// and replies with the number of series moved. The slice freezes at once: writes,
/// reads and subscriptions for it are buffered, in arrival order, and its windows
/// leave this shard's close schedule (those already due close here first). The
/// snapshot, at `new_epoch`, goes to `dest` as an import request with the request
/// timeout. On success the slice is dropped here and the shard remembers where it
/// went: buffered items and every later write range, read and subscription for the
/// slice are forwarded to `dest` (ranges at the slice's old or new epoch, rewritten
/// to the new one) and their results folded into the replies of the original
/// requests, one shard_write_result per shard write. On failure the slice thaws at
/// its old epoch, its windows are scheduled again, the buffered items are handled
/// here as if they had just arrived, and the export replies with the error; after
/// a timeout `dest` is also told to abort the import, in case it arrives late. No
/// window is closed on both sides: this shard
/// closes none of the slice's windows after the snapshot, `dest` none before.
/// Refused (errc::unavailable): a slice not served here or already being exported,
/// a `new_epoch` not above the slice's epoch, an invalid `dest`.
using shard_handoff_actor = shard_import_actor::extend<
  caf::replies_to<export_atom, uint32_t, uint64_t, shard_import_actor>::with<uint64_t>>;

inline uint32_t shard_of(uint32_t slice, uint32_t shard_count) noexcept {
  return slice % shard_count;
}

/// Counters shared by a node's shards, read by the operator API.
struct node_counters {
  std::atomic<uint64_t> series{0};
  std::atomic<uint64_t> samples_applied{0};
  std::atomic<uint64_t> samples_late{0};
  std::atomic<uint64_t> windows_closed{0};
  std::atomic<uint32_t> primary_slices{0};
  std::atomic<uint64_t> batches_acked{0};
  /// Writes forwarded from this node's gateway to a primary elsewhere that a
  /// follower shard here answered itself (replication's `near_ack`).
  std::atomic<uint64_t> near_answers{0};
  /// Write batches refused, by error code (index = errc value).
  std::array<std::atomic<uint64_t>, 32> batches_rejected{};
  /// Per slice (index = slice id; empty until `size_slices`): samples applied here
  /// as its primary, and its series count as of its latest write. The supervisor
  /// reports them to the directory as the slices' load. One relaxed update per
  /// range, not per sample.
  std::unique_ptr<std::atomic<uint64_t>[]> slice_applied;
  std::unique_ptr<std::atomic<uint64_t>[]> slice_series;
  /// Per slice: the table epoch at which the table has named this node its primary
  /// for a while (`unserved_report_ms`) without the slice being served here (no
  /// replica to promote, a replica fenced above that epoch, a stream fenced above
  /// it); 0 while it is served or not led here. The supervisor reports it with the
  /// load, and the directory elects the slice's primary again.
  std::unique_ptr<std::atomic<uint64_t>[]> slice_unserved;
  uint32_t slice_count = 0;

  void size_slices(uint32_t n) {
    slice_applied = std::make_unique<std::atomic<uint64_t>[]>(n);
    slice_series = std::make_unique<std::atomic<uint64_t>[]>(n);
    slice_unserved = std::make_unique<std::atomic<uint64_t>[]>(n);
    slice_count = n;
  }

  void count_slice(uint32_t slice, uint64_t applied, uint64_t series) {
    if (slice >= slice_count)
      return;
    if (applied > 0)
      slice_applied[slice].fetch_add(applied, std::memory_order_relaxed);
    slice_series[slice].store(series, std::memory_order_relaxed);
  }
};

struct shard_config {
  uint32_t index = 0;
  uint32_t shard_count = 1;
  std::string node_name;
  /// This process's incarnation (supervision/supervisor.hpp), or 0 outside a
  /// cluster. A table whose entry for `node_name` names another incarnation gives
  /// this shard no role: its roles belong to the process before a restart, whose
  /// replicas this one does not hold (a restarted node reads the directory's
  /// history before it is taken back).
  uint64_t incarnation = 0;
  uint32_t window_ms = 10000;       ///< for series whose samples carry none
  uint32_t lateness_ms = 5000;      ///< a window closes this long after its end
  uint32_t staleness_ms = 300000;   ///< cumulative inputs quiet this long are forgotten
  /// Bound on a write's sequence jump (apply_context::max_sequence_jump).
  uint64_t max_sequence_jump = std::numeric_limits<uint64_t>::max();
  /// Dedup eviction (apply_context::producer_idle_ms, max_producers).
  int64_t producer_idle_ms = std::numeric_limits<int64_t>::max();
  size_t max_producers_per_slice = std::numeric_limits<size_t>::max();
  /// Output series the node's led slices may hold in all (`counters->series`); 0:
  /// no bound (apply_context::series_room).
  uint64_t max_series = 0;
  uint32_t tick_ms = 100;           ///< how often due windows are closed
  double accuracy = 0.01;           ///< histogram sketch relative accuracy
  std::shared_ptr<rules::rule_cache> rules; ///< quantiles per rule
  caf::actor exporter; ///< receives every closed window, if set (remote write)
  std::shared_ptr<input_counts> inputs; ///< node-wide tracked input counts
  uint32_t request_timeout_ms = 5000;
  /// Samples, reads and subscriptions a slice buffers while its export is under
  /// way; past it, writes to the slice get errc::unavailable (retryable).
  uint32_t handoff_buffer_limit = 262144;
  directory_actor directory;
  std::shared_ptr<node_counters> counters;
  assignment_table initial; ///< table to serve from the start, before any update
  std::function<int64_t()> clock; ///< Unix ms for windows; empty = the wall clock
  /// Where promotions, refusals, step-downs and follower seeds are logged (optional).
  std::shared_ptr<events::event_log> events;
};

/// Spawns a shard. It subscribes to the directory and hosts the slices of its index
/// whose primary is this node, the slices imported into it, and follower replicas of
/// the slices of its index the table gives this node as a follower (see
/// `shard_replica_actor` and replication/README.md).
///
/// Directory tables and handoffs arrive independently: a table never drops a slice
/// held at an epoch above the table's epoch for it (the table predates an import),
/// never recreates a slice moved away from here unless the table's epoch for it is
/// above the move's, and an epoch above the move's ends the forwarding to where the
/// slice went. A slice being exported follows the latest table once the export ends.
shard_handoff_actor spawn_shard(caf::actor_system& sys, shard_config cfg);

} // namespace tether::series
