#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace tether::series {

/// A mergeable quantile sketch with a relative-error guarantee (DDSketch-style
/// logarithmic buckets), for histogram aggregation.
///
/// Guarantee: for q in [0, 1], `quantile(q)` is within relative error alpha of the
/// exact value x of rank `quantile_rank(q, count())` among the values added,
/// |quantile(q) - x| <= alpha |x|, provided x is zero or |x| >= `min_indexable` and x
/// lies outside a collapsed range (see below). q = 0 and q = 1 return the exact min
/// and max.
///
/// Buckets: a value v with |v| >= `min_indexable` is counted in bucket
/// i = ceil(log_gamma(|v|)) of the positive or the negative store; zero and smaller
/// magnitudes in one zero count. Bucket i covers the magnitudes (gamma^(i-1),
/// gamma^i] and is represented by 2 gamma^i / (gamma + 1), within relative error
/// (gamma - 1) / (gamma + 1) of every magnitude it covers. gamma is (1 + a) / (1 - a)
/// with a = alpha (1 - 1e-5): the margin of 1e-5 alpha (at least 1e-11) absorbs the
/// floating-point rounding of the logarithm, the index and the representative (below
/// 1e-12 relative over the whole double range), so the bound holds for the computed
/// results. Estimates are clamped to [min, max], which only moves them towards x.
///
/// Memory is bounded: a store holds at most `max_buckets` consecutive buckets. When a
/// value would widen it further, the store folds its lowest values into its first
/// bucket: the positive store its smallest magnitudes, the negative store its largest
/// magnitudes. A folded value keeps its count but not its magnitude, so the bound then
/// holds only for quantiles whose exact value lies above the collapsed range of its
/// store; for positive data, the quantiles above the collapsed range. count, sum, min
/// and max are never approximated.
///
/// Deterministic: the bucket contents are a function of the multiset of values added
/// (with alpha and the bucket limit), whatever the order of adds and merges, so
/// replicas that apply the same values agree. count, min and max are order-free too;
/// sum is the floating-point sum in order of application, so another grouping of
/// merges may change its last bits (a single merge is commutative). Bucket indices use
/// a logarithm built from IEEE-754 basic operations only, not libm's, whose code path
/// depends on the CPU: the same build computes the same buckets on every machine.
/// Quantile values are computed from the buckets with std::pow and may differ in the
/// last bit between machines.
///
/// A value type, not thread-safe: one actor owns it.
class ddsketch {
public:
  /// The accuracy used when none is given: 1 %.
  static constexpr double default_accuracy = 0.01;

  /// The smallest accepted accuracy. Below it, gamma is too close to 1 for a double
  /// to keep the bound exact and bucket indices of extreme values leave 32 bits.
  static constexpr double min_accuracy = 1e-6;

  /// The accepted accuracies are [min_accuracy, max_accuracy).
  static constexpr double max_accuracy = 0.5;

  /// Buckets per store when none is given: with alpha = 1 %, 2048 buckets cover a
  /// ratio of about 6e17 between the smallest and the largest magnitude of a store.
  static constexpr size_t default_max_buckets = 2048;

  /// The largest accepted bucket limit per store (128 MiB of counts per store).
  static constexpr size_t max_max_buckets = size_t{1} << 24;

  /// The smallest magnitude with a bucket of its own: the smallest normal double.
  /// Smaller magnitudes count as zero (an absolute error below 2.3e-308).
  static constexpr double min_indexable = std::numeric_limits<double>::min();

  /// Whether the constructor accepts `alpha` and `max_buckets`.
  static bool valid_config(double alpha, size_t max_buckets) noexcept;

  /// The rank rule of `quantile`: the 0-based position, among the n values in
  /// ascending order, of the value that quantile q refers to: ceil(q * (n - 1)), the
  /// product computed in double precision, capped at n - 1. Precondition: n > 0 and
  /// q in [0, 1].
  static uint64_t quantile_rank(double q, uint64_t n) noexcept;

  /// An empty sketch with relative accuracy `alpha` and at most `max_buckets`
  /// buckets per store. Throws std::invalid_argument unless
  /// `valid_config(alpha, max_buckets)`, like other configuration errors at start.
  explicit ddsketch(double alpha = default_accuracy,
                    size_t max_buckets = default_max_buckets);

  /// Counts the finite value `v` `n` times (n = 0 does nothing). -0.0 counts as 0.
  /// O(1) amortised; allocates only when `v` widens a store's range.
  void add(double v, uint64_t n = 1);

  /// Adds all values counted by `other`, as if they had been added here. Returns
  /// false and changes nothing if the sketches' relative accuracies differ. The result
  /// keeps this sketch's bucket limit; the order independence of bucket contents
  /// holds when all sketches merged share it. `other` may be this sketch.
  bool merge(const ddsketch& other);

  /// The estimate of the value of rank `quantile_rank(q, count())`; NaN if the sketch
  /// is empty or q is not in [0, 1].
  double quantile(double q) const;

  uint64_t count() const noexcept {
    return count_;
  }

  /// The sum of the values added (each times its count), in order of application.
  double sum() const noexcept {
    return sum_;
  }

  /// The exact smallest value added; NaN if empty.
  double min() const noexcept;

  /// The exact largest value added; NaN if empty.
  double max() const noexcept;

  /// The alpha this sketch was configured with.
  double relative_accuracy() const noexcept {
    return alpha_;
  }

  /// The bucket base actually used (see the class comment).
  double gamma() const noexcept {
    return gamma_;
  }

  /// The bucket limit per store.
  size_t max_buckets() const noexcept {
    return static_cast<size_t>(max_buckets_);
  }

  bool empty() const noexcept {
    return count_ == 0;
  }

  /// Forgets all values; keeps the configuration and the allocated storage.
  void clear() noexcept;

  /// The number of non-empty buckets, the zero count included.
  size_t bucket_count() const noexcept;

  /// Approximate memory held: this object plus the storage of both stores.
  size_t memory_bytes() const noexcept;

  /// Calls `f(sign, index, count)` for every non-empty bucket in ascending order of
  /// value: sign -1 (negative store) or 1 (positive store) with index
  /// ceil(log_gamma(|v|)), or sign 0 and index 0 for the zero count.
  template <class F>
  void for_each_bucket(F&& f) const {
    for (size_t j = 0; j < neg_.counts.size(); ++j)
      if (auto c = neg_.counts[j])
        f(-1, -(neg_.offset + static_cast<int32_t>(j)), c);
    if (zero_count_ != 0)
      f(0, int32_t{0}, zero_count_);
    for (size_t j = 0; j < pos_.counts.size(); ++j)
      if (auto c = pos_.counts[j])
        f(1, pos_.offset + static_cast<int32_t>(j), c);
  }

  /// Equal configuration, count, sum, min, max and bucket contents.
  friend bool operator==(const ddsketch& x, const ddsketch& y) noexcept;

  friend bool operator!=(const ddsketch& x, const ddsketch& y) noexcept {
    return !(x == y);
  }

  /// Whether the state satisfies the sketch's invariants (valid configuration,
  /// canonical stores within the bucket limit, counts adding up to count(), min <=
  /// max). Always true except after loading bytes that no sketch produced.
  bool consistent() const noexcept;

  /// Serialises the configuration and the plain state; the derived constants are
  /// recomputed after loading. The state is canonical (a store's first and last
  /// bucket are never empty), so equal sketches serialise to equal bytes. A load that
  /// yields an inconsistent state (truncated or foreign bytes) leaves an empty sketch
  /// with the default configuration instead.
  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, ddsketch& x) {
    if constexpr (Inspector::writes_state) {
      auto result = f(x.alpha_, x.max_buckets_, x.count_, x.sum_, x.min_, x.max_,
                      x.zero_count_, x.pos_, x.neg_);
      x.after_load();
      return result;
    } else {
      return f(x.alpha_, x.max_buckets_, x.count_, x.sum_, x.min_, x.max_,
               x.zero_count_, x.pos_, x.neg_);
    }
  }

private:
  /// Consecutive buckets: counts[j] belongs to key offset + j. Keys ascend with the
  /// value: the positive store's key is the bucket index, the negative store's key is
  /// minus the index of |v|. Canonical: empty, or counts.front() and counts.back()
  /// are non-zero, and counts.size() <= the bucket limit.
  struct store {
    int32_t offset = 0;
    std::vector<uint64_t> counts;

    void add(int32_t key, uint64_t n, int64_t limit) {
      auto j = static_cast<uint64_t>(int64_t{key} - offset);
      if (j < counts.size())
        counts[j] += n;
      else
        add_outside(key, n, limit);
    }

    /// Adds at a key outside [offset, offset + size), widening or folding.
    void add_outside(int32_t key, uint64_t n, int64_t limit);

    /// Adds all counts of `other`, folding to keep at most `limit` buckets.
    void merge(const store& other, int64_t limit);

    /// Whether the store is canonical and within `limit`; adds its counts to `total`.
    bool consistent(int64_t limit, uint64_t& total) const noexcept;

    template <class Inspector>
    friend typename Inspector::result_type inspect(Inspector& f, store& x) {
      return f(x.offset, x.counts);
    }
  };

  /// Recomputes the derived constants, or resets an inconsistent loaded state.
  void after_load() noexcept;

  /// Sets gamma_, multiplier_, factor_ and upper_factor_ from alpha_.
  void derive_constants() noexcept;

  /// ceil(log_gamma(m)) for m >= min_indexable.
  int32_t index_of(double m) const noexcept;

  /// The representative of bucket `index`: 2 gamma^index / (gamma + 1).
  double representative(int32_t index) const noexcept;

  // Configuration and state (serialised).
  double alpha_;
  uint64_t max_buckets_;
  uint64_t count_ = 0;
  double sum_ = 0;
  double min_ = 0; ///< valid if count_ > 0; never -0.0
  double max_ = 0; ///< valid if count_ > 0; never -0.0
  uint64_t zero_count_ = 0;
  store pos_;
  store neg_;

  // Derived from alpha_ (not serialised).
  double gamma_ = 0;
  double multiplier_ = 0;   ///< 1 / ln(gamma_)
  double factor_ = 0;       ///< 2 / (gamma_ + 1)
  double upper_factor_ = 0; ///< 2 gamma_ / (gamma_ + 1)
};

} // namespace tether::series
