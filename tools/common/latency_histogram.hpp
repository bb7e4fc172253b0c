#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tether::tools {

/// A compact log-linear histogram of non-negative integer values (nanoseconds), in the
/// style of HDR histograms.
///
/// Layout: with `S = 2^precision_bits` sub-buckets, values below `S` get one slot each
/// (exact); above, every power-of-two range `[2^e, 2^(e+1))` is split into `S/2` equal
/// slots. A quantile is reported as the midpoint of its slot, clamped to the exact
/// minimum and maximum, so for every value up to `highest()` the reported quantile
/// differs from the exact nearest-rank quantile by at most `relative_error()` (= 1/S)
/// of the latter. Values above `highest()` are counted in the top slot (see
/// `saturated()`); `max()` and `min()` are always exact.
///
/// Memory: `(S/2) * (log2(highest) - precision_bits + 2)` 64-bit counters, e.g. about
/// 19 KiB for 1 % precision and a range of 1 hour in nanoseconds.
///
/// Thread safety: none; use one histogram per thread or session and `merge` them.
class latency_histogram {
public:
  /// Default upper bound of the tracked range: one hour in nanoseconds.
  static constexpr std::uint64_t default_highest = 3'600'000'000'000ULL;

  /// Default bound on the relative error of reported quantiles.
  static constexpr double default_max_relative_error = 0.01;

  /// Creates an empty histogram whose reported quantiles have a relative error of at most
  /// `max_relative_error` (clamped to [1e-6, 0.5]) for values in [0, highest].
  explicit latency_histogram(std::uint64_t highest = default_highest,
                             double max_relative_error = default_max_relative_error);

  /// Adds one value.
  void record(std::uint64_t value) {
    record_n(value, 1);
  }

  /// Adds `n` occurrences of a value.
  void record_n(std::uint64_t value, std::uint64_t n);

  /// Adds every value recorded in `other`. With the same layout (same `highest` and
  /// precision) this is exact; otherwise each of `other`'s slots is re-recorded at its
  /// representative value, which adds at most `other.relative_error()` of error.
  void merge(const latency_histogram& other);

  /// Removes every recorded value; keeps the layout.
  void reset();

  /// The nearest-rank quantile for `q` in [0, 1] (values outside are clamped): the
  /// representative of the slot holding the `ceil(q * count())`-th smallest value
  /// (the smallest value for q = 0). Returns 0 when empty.
  std::uint64_t quantile(double q) const;

  /// Number of values recorded.
  std::uint64_t count() const noexcept {
    return count_;
  }

  /// Largest value recorded (exact), 0 when empty.
  std::uint64_t max() const noexcept {
    return max_;
  }

  /// Smallest value recorded (exact), 0 when empty.
  std::uint64_t min() const noexcept {
    return count_ == 0 ? 0 : min_;
  }

  /// Number of values recorded above `highest()`.
  std::uint64_t saturated() const noexcept {
    return saturated_;
  }

  /// Arithmetic mean of the recorded values (exact up to floating point), 0 when empty.
  double mean() const noexcept;

  /// Upper bound of the range with guaranteed precision.
  std::uint64_t highest() const noexcept {
    return highest_;
  }

  /// Guaranteed bound on the relative error of `quantile` for values up to `highest()`.
  double relative_error() const noexcept;

  /// log2 of the number of sub-buckets per power of two.
  unsigned precision_bits() const noexcept {
    return bits_;
  }

  /// Number of counters (slots) held.
  std::size_t slot_count() const noexcept {
    return counts_.size();
  }

  /// Slot index of a value, clamped to the last slot. Exposed for tests.
  std::size_t slot_of(std::uint64_t value) const noexcept;

  /// Smallest value mapped to slot `index`. Exposed for tests.
  std::uint64_t slot_low(std::size_t index) const noexcept;

  /// Number of distinct values mapped to slot `index`. Exposed for tests.
  std::uint64_t slot_width(std::size_t index) const noexcept;

private:
  /// The value reported for a slot: its midpoint, rounded down.
  std::uint64_t representative(std::size_t index) const noexcept {
    return slot_low(index) + slot_width(index) / 2;
  }

  unsigned bits_;
  std::uint64_t sub_count_;
  std::uint64_t half_count_;
  std::uint64_t highest_;
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
  std::uint64_t saturated_ = 0;
  long double sum_ = 0;
};

} // namespace tether::tools
