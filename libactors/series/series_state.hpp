#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <memory>
#include <vector>

#include "series/ddsketch.hpp"
#include "tether/types.hpp"
#include "wire/keyed_batch.hpp"

namespace tether::series {

/// One window of one series while it is open (a histogram's sketch is kept apart,
/// see `series_state::sketch`). A window exists once a sample opened it: count >= 1.
struct window_agg {
  int64_t start = 0;
  uint64_t count = 0;
  double sum = 0; ///< counters: the increase within the window
  double min = 0;
  double max = 0;
  double last = 0;
  int64_t last_ts = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, window_agg& x) {
  return f(x.start, x.count, x.sum, x.min, x.max, x.last, x.last_ts);
}

/// The sketch of one open histogram window.
struct window_sketch {
  int64_t start = 0;
  ddsketch sketch;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, window_sketch& x) {
  return f(x.start, x.sketch);
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
/// increase, rate) is computed when the view is made, the counter total at its end
/// is the series' `closed_total` and a histogram's quantiles are kept apart.
struct closed_window {
  int64_t start = 0;
  uint64_t count = 0; ///< 0: no window has closed yet
  double sum = 0;
  double min = 0;
  double max = 0;
  double last = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, closed_window& x) {
  return f(x.start, x.count, x.sum, x.min, x.max, x.last);
}

/// What applying one sample did.
enum class apply_outcome : uint8_t {
  applied,
  applied_new_window, ///< applied, and it opened a window the caller must schedule
  late,               ///< not applied: its window had already closed
};

/// What only some series need, allocated on first use: open windows beyond the two
/// a series holds inline, histogram sketches, cumulative inputs, the quantiles of
/// the latest closed histogram window.
struct series_extra {
  std::vector<window_agg> more_open;     ///< ascending start, after the inline ones
  std::vector<window_sketch> sketches;   ///< one per open histogram window, ascending
  std::vector<input_state> inputs;       ///< cumulative counters only
  std::vector<std::pair<double, double>> quantiles; ///< of the latest closed window

  bool empty() const noexcept {
    return more_open.empty() && sketches.empty() && inputs.empty() && quantiles.empty();
  }
};

class series_state;

/// The open windows of a series in ascending order of start, as a read-only range.
class window_range {
public:
  explicit window_range(const series_state& st) : st_(&st) {
  }

  size_t size() const noexcept;

  bool empty() const noexcept {
    return size() == 0;
  }

  const window_agg& operator[](size_t i) const noexcept;

  class iterator {
  public:
    using difference_type = std::ptrdiff_t;
    using value_type = window_agg;
    using pointer = const window_agg*;
    using reference = const window_agg&;
    using iterator_category = std::forward_iterator_tag;

    iterator(const series_state* st, size_t i) : st_(st), i_(i) {
    }

    reference operator*() const noexcept {
      return window_range{*st_}[i_];
    }

    pointer operator->() const noexcept {
      return &window_range{*st_}[i_];
    }

    iterator& operator++() noexcept {
      ++i_;
      return *this;
    }

    bool operator==(const iterator& other) const noexcept {
      return i_ == other.i_;
    }

    bool operator!=(const iterator& other) const noexcept {
      return i_ != other.i_;
    }

  private:
    const series_state* st_;
    size_t i_;
  };

  iterator begin() const noexcept {
    return {st_, 0};
  }

  iterator end() const noexcept {
    return {st_, size()};
  }

private:
  const series_state* st_;
};

/// The aggregation state of one output series: running state since creation, the
/// open windows (tumbling, aligned to multiples of the window length on the sample
/// timestamps) and the latest closed window. Deterministic: replicas that apply the
/// same samples in the same order and close the same windows hold the same state.
///
/// Compact (256 bytes): the two oldest open windows are held inline (with lateness
/// below the window length a series has at most two open at a time), everything
/// only some series need lives in a `series_extra` allocated on first use.
class series_state {
public:
  series_state() = default;
  series_state(series_state&&) noexcept = default;
  series_state& operator=(series_state&&) noexcept = default;
  series_state(const series_state& other);
  series_state& operator=(const series_state& other);

  double total = 0;        ///< counters: running total, never decreasing
  double closed_total = 0; ///< counters: total at the end of the last closed window
  double last = 0;         ///< last value (gauge, histogram) or last increment (counter)
  double min = 0;
  double max = 0;
  double sum = 0;
  uint64_t count = 0;      ///< samples applied
  int64_t updated_ms = 0;
  int64_t closed_until = 0; ///< end of the newest closed window; earlier ones are final
  closed_window last_closed; ///< the latest closed window
  uint32_t window_ms = 10000;
  uint32_t rule = 0;
  tether::kind kind = kind::unspecified;

  /// The open windows, ascending start.
  window_range open() const noexcept {
    return window_range{*this};
  }

  /// The sketch of the open window at `start`; null if none (not a histogram).
  const ddsketch* sketch(int64_t start) const noexcept;

  /// The number of sketches held: one per open window of a histogram.
  size_t sketch_count() const noexcept {
    return extra_ ? extra_->sketches.size() : 0;
  }

  /// The tracked cumulative inputs (cumulative counters only).
  const std::vector<input_state>& inputs() const noexcept;

  /// The latest closed window as a view (end_ms 0 if none has closed).
  window_view last_window() const;

  /// Applies one validated sample of the series' kind. A sample is late, and changes
  /// nothing, when its window has closed here (it ends at or before `closed_until`)
  /// or should have: it ends `lateness_ms` or more before `now_ms`.
  /// A cumulative input quiet for `staleness_ms` or longer counts as new: its value
  /// is a baseline again. Allocates only when the sample opens a histogram window,
  /// a third open window or tracks a new cumulative input.
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

  /// The whole state, open windows and sketches included: what a slice handoff
  /// carries. Loading keeps the open windows that hold samples, in the order given.
  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, series_state& x) {
    if constexpr (Inspector::writes_state) {
      std::vector<window_agg> windows;
      series_extra extra;
      auto err = f(x.kind, x.window_ms, x.rule, x.total, x.closed_total, x.last, x.min,
                   x.max, x.sum, x.count, x.updated_ms, x.closed_until, x.last_closed,
                   windows, extra.sketches, extra.inputs, extra.quantiles);
      x.assign(windows, std::move(extra));
      return err;
    } else {
      std::vector<window_agg> windows{x.open().begin(), x.open().end()};
      series_extra extra;
      if (x.extra_)
        extra = *x.extra_;
      return f(x.kind, x.window_ms, x.rule, x.total, x.closed_total, x.last, x.min,
               x.max, x.sum, x.count, x.updated_ms, x.closed_until, x.last_closed,
               windows, extra.sketches, extra.inputs, extra.quantiles);
    }
  }

private:
  friend class window_range;

  size_t inline_count() const noexcept {
    return slots_[0].count == 0 ? 0 : (slots_[1].count == 0 ? 1 : 2);
  }

  size_t open_count() const noexcept {
    auto n = inline_count();
    return n < 2 || !extra_ ? n : n + extra_->more_open.size();
  }

  window_agg& window_at(size_t i) noexcept {
    return i < 2 ? slots_[i] : extra_->more_open[i - 2];
  }

  const window_agg& window_at(size_t i) const noexcept {
    return i < 2 ? slots_[i] : extra_->more_open[i - 2];
  }

  series_extra& extra() {
    if (!extra_)
      extra_ = std::make_unique<series_extra>();
    return *extra_;
  }

  /// Drops the extra part once nothing is left in it.
  void trim_extra() noexcept {
    if (extra_ && extra_->empty())
      extra_.reset();
  }

  ddsketch* sketch_at(int64_t start) noexcept;

  /// Inserts `w` (count >= 1) at position `i` of the open windows.
  void insert_window(size_t i, const window_agg& w);

  /// Removes the open window at position `i`.
  void erase_window(size_t i);

  /// Replaces the open windows and the extra part with loaded ones.
  void assign(const std::vector<window_agg>& windows, series_extra&& extra);

  window_agg slots_[2];
  std::unique_ptr<series_extra> extra_;
};

inline size_t window_range::size() const noexcept {
  return st_->open_count();
}

inline const window_agg& window_range::operator[](size_t i) const noexcept {
  return st_->window_at(i);
}

} // namespace tether::series
