#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "series/ddsketch.hpp"
#include "tether/types.hpp"
#include "wire/keyed_batch.hpp"

namespace tether::series {

/// One window of one series while it is open.
struct window_agg {
  int64_t start = 0;
  uint64_t count = 0;
  double sum = 0; ///< counters: the increase within the window
  double min = 0;
  double max = 0;
  double last = 0;
  int64_t last_ts = 0;
  std::unique_ptr<ddsketch> sketch; ///< histograms only

  window_agg() = default;
  window_agg(window_agg&&) noexcept = default;
  window_agg& operator=(window_agg&&) noexcept = default;

  /// A deep copy: the copy owns a sketch of its own.
  window_agg(const window_agg& other);
  window_agg& operator=(const window_agg& other);
};

/// Serialises the window with its sketch, if any. Loading creates the sketch that
/// the bytes carry and nothing else.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, window_agg& x) {
  if constexpr (Inspector::writes_state) {
    bool has_sketch = false;
    if (auto err = f(x.start, x.count, x.sum, x.min, x.max, x.last, x.last_ts,
                     has_sketch))
      return err;
    if (!has_sketch) {
      x.sketch.reset();
      return {};
    }
    x.sketch = std::make_unique<ddsketch>();
    return f(*x.sketch);
  } else {
    bool has_sketch = x.sketch != nullptr;
    if (has_sketch)
      return f(x.start, x.count, x.sum, x.min, x.max, x.last, x.last_ts, has_sketch,
               *x.sketch);
    return f(x.start, x.count, x.sum, x.min, x.max, x.last, x.last_ts, has_sketch);
  }
}

/// A cumulative counter's input series as tracked inside its output series.
struct input_state {
  uint64_t hash = 0; ///< key_hash of the input key
  double last = 0;   ///< the input's last reported running total
  int64_t seen_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, input_state& x) {
  return f(x.hash, x.last, x.seen_ms);
}

/// The latest closed window, kept compactly: what a window_view derives (end, mean,
/// increase, rate) is computed when the view is made.
struct closed_window {
  int64_t start = 0;
  uint64_t count = 0; ///< 0: no window has closed yet
  double sum = 0;
  double min = 0;
  double max = 0;
  double last = 0;
  double total = 0;
  std::vector<std::pair<double, double>> quantiles;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, closed_window& x) {
  return f(x.start, x.count, x.sum, x.min, x.max, x.last, x.total, x.quantiles);
}

/// What applying one sample did.
enum class apply_outcome : uint8_t {
  applied,
  applied_new_window, ///< applied, and it opened a window the caller must schedule
  late,               ///< not applied: its window had already closed
};

/// The aggregation state of one output series: running state since creation, the
/// open windows (tumbling, aligned to multiples of the window length on the sample
/// timestamps) and the latest closed window. Deterministic: replicas that apply the
/// same samples in the same order and close the same windows hold the same state.
struct series_state {
  tether::kind kind = kind::unspecified;
  uint32_t window_ms = 10000;
  uint32_t rule = 0;
  double total = 0;        ///< counters: running total, never decreasing
  double closed_total = 0; ///< counters: total at the end of the last closed window
  double last = 0;         ///< last value (gauge, histogram) or last increment (counter)
  double min = 0;
  double max = 0;
  double sum = 0;
  uint64_t count = 0;      ///< samples applied
  int64_t updated_ms = 0;
  int64_t closed_until = 0; ///< end of the newest closed window; earlier ones are final
  std::vector<input_state> inputs; ///< cumulative counters only
  std::vector<window_agg> open;    ///< open windows, ascending start
  closed_window last_closed;       ///< the latest closed window

  /// The latest closed window as a view (end_ms 0 if none has closed).
  window_view last_window() const;

  /// Applies one validated sample of the series' kind. A sample is late, and changes
  /// nothing, when its window has closed here (it ends at or before `closed_until`)
  /// or should have: it ends `lateness_ms` or more before `now_ms`.
  /// A cumulative input quiet for `staleness_ms` or longer counts as new: its value
  /// is a baseline again.
  apply_outcome apply(const wire::keyed_sample& s, int64_t now_ms,
                      int64_t lateness_ms, double accuracy,
                      int64_t staleness_ms = std::numeric_limits<int64_t>::max());

  /// Closes the open window starting at `start` (if any) and returns its aggregate.
  /// `quantiles` are the ones the rule asks for.
  window_view close(int64_t start, const std::vector<double>& quantiles);

  /// Forgets cumulative inputs not seen since `cutoff_ms`, without lowering totals.
  size_t forget_inputs(int64_t cutoff_ms);

  /// Copies the running state and the latest closed window into a view.
  void fill(series_view& view) const;

  int64_t window_start(int64_t ts) const noexcept {
    auto w = static_cast<int64_t>(window_ms);
    return ts >= 0 ? ts / w * w : ((ts - w + 1) / w) * w;
  }
};

/// The whole state, open windows and their sketches included: what a slice handoff
/// carries.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, series_state& x) {
  return f(x.kind, x.window_ms, x.rule, x.total, x.closed_total, x.last, x.min, x.max,
           x.sum, x.count, x.updated_ms, x.closed_until, x.inputs, x.open,
           x.last_closed);
}

} // namespace tether::series
