#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "tether/types.hpp"

namespace tether::outputs {

/// Passes each closed window of a series once and in order.
///
/// A slice's primary emits a window once a write quorum applied its close mark.
/// A follower promoted after a failover emits again the windows of the marks it
/// had not been told were committed, so a window emitted just before a primary
/// died can arrive a second time, possibly after a newer window of the same
/// series. Every consumer that must not see a window twice (a WebSocket
/// subscription, remote write) runs the windows it receives through one
/// `window_order`: a window whose end is not after the last one passed for its
/// series is dropped.
///
/// Remembers one end per series it saw (keyed by the 64-bit hash of the series
/// key, 16 bytes plus the table's overhead). Not thread-safe.
class window_order {
public:
  /// A series is forgotten once its last window ended more than `horizon_ms`
  /// before the clock passed to `filter` (a repeat comes within a failover, seconds
  /// after the first delivery), so the table holds only the recently active series.
  explicit window_order(int64_t horizon_ms = 10 * 60 * 1000) : horizon_ms_(horizon_ms) {
  }

  /// Removes from `views` every window not newer than the last one passed for its
  /// series, in place, keeping the order of the rest. `now_ms` is the consumer's
  /// clock (for forgetting). Returns how many windows it removed.
  ///
  /// Also for a snapshot of the series' current state (a subscription's first
  /// update), which carries each series' latest closed window and a total read
  /// after that window closed: a window delivered before the snapshot may be sent
  /// on after it (the WebSocket session gathers windows briefly), so a series whose
  /// window, or a later one, was passed already is removed from the snapshot; the
  /// others' window ends are recorded, so that a window closed before the read but
  /// delivered after it (its close mark was not committed yet) is dropped.
  size_t filter(std::vector<series_view>& views, int64_t now_ms);

  /// The same for a subscription's first update (a snapshot of the series' current
  /// state): a series whose latest closed window is the last one passed stays in it,
  /// since another subscription of the same consumer may have passed that window and
  /// this subscription still needs the series' state (docs/protocol.md 15.3, items 2
  /// and 5); only a snapshot older than a window already passed is removed (it would
  /// show a counter going back). Records the ends of the others.
  size_t filter_snapshot(std::vector<series_view>& views, int64_t now_ms);

  /// How many series it remembers.
  size_t size() const noexcept {
    return last_end_.size();
  }

private:
  void sweep(int64_t now_ms);
  /// Drops views not past the last end passed for their series (`keep_equal`:
  /// keeps those ending at it) and records the ends of the rest.
  size_t drop(std::vector<series_view>& views, int64_t now_ms, bool keep_equal);

  int64_t horizon_ms_;
  int64_t next_sweep_ = 0;
  std::unordered_map<uint64_t, int64_t> last_end_;
};

} // namespace tether::outputs
