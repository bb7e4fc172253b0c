#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace tether::tools::load {

/// When something happened during a run, finer than the per-second progress lines: one
/// kind of event (acks, updates becoming visible) as amounts per fixed bucket from the
/// start of sending, and the longest gaps between consecutive events, exact to the clock.
/// The gaps are what a failure experiment measures: a node killed mid-run shows up as
/// the longest stretch without acks (tools/bench/compare.sh, COMPARE_FAILURE=1).
///
/// Gaps: from `start` (or the latest event) to the next event, kept if at least
/// `min_gap` long; only the `max_gaps` longest are kept. `finish(end)` closes the run:
/// a stretch from the latest event to `end` counts as a gap marked `open` (nothing ended
/// it). Events before `start` or after `finish` are ignored; events that arrive out of
/// order (taken on several threads) fill their bucket but open no gap.
///
/// Thread safety: every member function may be called from any thread.
class activity_timeline {
public:
  using clock = std::chrono::steady_clock;

  /// A stretch without events, in seconds from the start.
  struct gap {
    double from_s = 0.0;
    double to_s = 0.0;
    /// No event ended it: it lasted until `finish`.
    bool open = false;

    double seconds() const noexcept {
      return to_s - from_s;
    }
  };

  static constexpr std::chrono::milliseconds default_bucket{100};
  /// One hour of 100 ms buckets; later events still count for the gaps.
  static constexpr std::size_t default_max_buckets = 36'000;
  static constexpr std::size_t default_max_gaps = 8;
  static constexpr std::chrono::milliseconds default_min_gap{10};

  explicit activity_timeline(std::chrono::milliseconds bucket = default_bucket,
                             std::size_t max_buckets = default_max_buckets,
                             std::size_t max_gaps = default_max_gaps,
                             std::chrono::milliseconds min_gap = default_min_gap);

  /// Starts the timeline at `at`: bucket 0 begins there, and so does the first gap.
  void start(clock::time_point at);

  /// Records `amount` (samples, updates) happening at `at`.
  void record(clock::time_point at, std::uint64_t amount);

  /// Ends the timeline at `at`: a stretch since the latest event becomes an open gap.
  /// Later calls and events change nothing.
  void finish(clock::time_point at);

  std::chrono::milliseconds bucket() const noexcept {
    return bucket_;
  }

  /// Amount per bucket from the start up to the bucket of `finish` (before `finish`: up
  /// to the latest bucket with an event).
  std::vector<std::uint64_t> buckets() const;

  /// The longest gaps (at most `max_gaps`), in order of time.
  std::vector<gap> gaps() const;

private:
  void add_gap(clock::time_point from, clock::time_point to, bool open);

  const std::chrono::milliseconds bucket_;
  const std::size_t max_buckets_;
  const std::size_t max_gaps_;
  const std::chrono::milliseconds min_gap_;
  mutable std::mutex mutex_;
  bool started_ = false;
  bool finished_ = false;
  clock::time_point start_{};
  clock::time_point latest_{};
  std::vector<std::uint64_t> buckets_;
  std::vector<gap> gaps_;
};

} // namespace tether::tools::load
