#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "rules/rule_cache.hpp"
#include "series/shard_messages.hpp"
#include "tether/actors.hpp"

namespace tether::series {

struct input_counts;

using tick_atom = caf::atom_constant<caf::atom("tt_tick")>;

/// A node-local actor that hosts some of the node's slices: slices are the unit of
/// placement, shards the unit of execution (one per core by default). Slice `s` lives
/// on shard `s % shard_count` of the node that holds it.
/// Subscribers receive `(window_atom, std::vector<series_view>)` when windows close:
/// each view carries the window that closed.
using shard_actor = caf::typed_actor<
  caf::replies_to<write_atom, shard_write>::with<shard_write_result>,
  caf::replies_to<read_atom, key_route>::with<series_view>,
  caf::replies_to<read_atom>::with<shard_scrape>,
  caf::replies_to<subscribe_atom, std::vector<key_route>, caf::actor>::with<
    std::vector<series_view>>,
  caf::reacts_to<update_atom, assignment_table>, caf::reacts_to<tick_atom>>;

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
  /// Write batches refused, by error code (index = errc value).
  std::array<std::atomic<uint64_t>, 32> batches_rejected{};
};

struct shard_config {
  uint32_t index = 0;
  uint32_t shard_count = 1;
  std::string node_name;
  uint32_t window_ms = 10000;       ///< for series whose samples carry none
  uint32_t lateness_ms = 5000;      ///< a window closes this long after its end
  uint32_t staleness_ms = 300000;   ///< cumulative inputs quiet this long are forgotten
  uint32_t tick_ms = 100;           ///< how often due windows are closed
  double accuracy = 0.01;           ///< histogram sketch relative accuracy
  std::shared_ptr<rules::rule_cache> rules; ///< quantiles per rule
  caf::actor exporter; ///< receives every closed window, if set (remote write)
  std::shared_ptr<input_counts> inputs; ///< node-wide tracked input counts
  uint32_t request_timeout_ms = 5000;
  directory_actor directory;
  std::shared_ptr<node_counters> counters;
  assignment_table initial; ///< table to serve from the start, before any update
  std::function<int64_t()> clock; ///< Unix ms for windows; empty = the wall clock
};

/// Spawns a shard. It subscribes to the directory and hosts the slices of its index
/// whose primary is this node.
shard_actor spawn_shard(caf::actor_system& sys, shard_config cfg);

} // namespace tether::series
