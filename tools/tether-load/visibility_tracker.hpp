#pragma once

#include "common/latency_histogram.hpp"
#include "tether-load/activity_timeline.hpp"
#include "tether-load/output_map.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

namespace tether::tools::load {

/// Write-to-visible latency of a few tracked output series.
///
/// Definition. Let `S(k, b)` be the number of samples sent to tracked output `k` by every
/// batch sent up to and including batch `b` (in the order the writers hand batches to
/// their connections, over all connections). Batch `b`'s update of `k` is *visible* at
/// the first observation of `k`'s running sample count (counter total with delta 1, gauge
/// count) at or above `S(k, b)`, counted from the value before the run. Its write-to-
/// visible latency is the observation time minus the batch's send time (in open loop its
/// scheduled time, as for write-to-ack). When the system applies the writes to `k` in the
/// order they were sent, this is exactly when the batch's samples became readable; when
/// it reorders concurrent writes, it is when the reader has seen as many samples as were
/// written up to that batch. The definition needs nothing but a running count, so any
/// system (a Tether node read by queries, a consumer of a broker read in process) is
/// measured the same way. One latency is recorded per (batch, tracked output) with at
/// least one sample in the batch.
///
/// An observation is as late as the reader makes it: the reader reports the time it
/// *received* the value, so the latency includes the reader's own delay (a query round
/// trip, a poll interval) and never undercounts.
///
/// Updates becoming visible are also kept over time (`activity_timeline`), over all
/// tracked outputs and per output: a failure that stops the outputs of one node shows
/// as a stretch without visible updates of those outputs even while others go on.
///
/// Thread safety: every member function may be called from any thread.
class visibility_tracker {
public:
  using clock = std::chrono::steady_clock;

  static constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();

  /// Tracks the outputs `outputs` of `map` (sorted, distinct; the slot of an output is its
  /// position in the list).
  visibility_tracker(output_map map, std::vector<std::uint64_t> outputs);

  /// Number of tracked outputs.
  std::size_t size() const noexcept {
    return outputs_.size();
  }

  /// The output tracked in `slot`.
  std::uint64_t output(std::size_t slot) const {
    return outputs_[slot];
  }

  /// The canonical key of the output tracked in `slot`.
  std::string key(std::size_t slot) const {
    return map_.key(outputs_[slot]);
  }

  /// The slot of `output`, or `npos` when it is not tracked.
  std::size_t slot_of(std::uint64_t output) const noexcept;

  /// Records a batch whose samples name the series `ids`, handed to its connection now
  /// and sent (or scheduled) at `sent`.
  void on_batch(const std::vector<std::uint64_t>& ids, clock::time_point sent);

  /// Records a batch with `counts[slot]` samples for each tracked output.
  void on_sent(const std::vector<std::uint32_t>& counts, clock::time_point sent);

  /// Sets the count of `slot` before the run: observations count from it.
  void set_baseline(std::size_t slot, std::uint64_t count);

  /// The reader saw `count` as `slot`'s running sample count at `at`: every update it
  /// covers becomes visible. Returns the number of updates that became visible.
  std::uint64_t on_observed(std::size_t slot, std::uint64_t count, clock::time_point at);

  /// Whether `slot` has updates not yet visible.
  bool pending(std::size_t slot) const;

  /// Updates not yet visible, over all slots.
  std::uint64_t pending_total() const;

  /// Latencies of the visible updates, in nanoseconds.
  latency_histogram latency() const;

  /// Starts the timelines of visible updates (the start of sending).
  void start_timelines(clock::time_point at);

  /// Ends them: see `activity_timeline::finish`.
  void finish_timelines(clock::time_point at);

  /// Updates becoming visible over all tracked outputs.
  const activity_timeline& timeline() const noexcept {
    return overall_;
  }

  /// Updates of the output in `slot` becoming visible.
  const activity_timeline& timeline(std::size_t slot) const {
    return *per_slot_[slot];
  }

private:
  struct update {
    std::uint64_t until; ///< S(k, b): samples sent to the output up to this batch
    clock::time_point sent;
  };

  struct slot_state {
    std::uint64_t sent = 0;     ///< samples sent so far
    std::uint64_t baseline = 0; ///< the count before the run
    std::deque<update> updates; ///< not yet visible, ascending `until`
  };

  void record_sent(std::size_t slot, std::uint32_t count, clock::time_point sent);

  const output_map map_;
  const std::vector<std::uint64_t> outputs_;
  mutable std::mutex mutex_;
  std::vector<slot_state> slots_;
  std::vector<std::uint32_t> scratch_;
  latency_histogram latency_;
  activity_timeline overall_;
  std::vector<std::unique_ptr<activity_timeline>> per_slot_;
};

} // namespace tether::tools::load
