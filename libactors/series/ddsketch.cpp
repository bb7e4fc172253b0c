#include "series/ddsketch.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace tether::series {

namespace {

/// The share of alpha given up to absorb rounding: gamma is built from
/// alpha (1 - accuracy_margin). Rounding in the logarithm, in 1 / ln gamma and in
/// their product can put a value into a neighbouring bucket only if it lies within
/// |ln v| * 5e-16 <= 4e-13 (relative) of the boundary; the representative's rounding
/// adds a few 1e-16. Both stay below 1e-12, and alpha 1e-5 >= 1e-11 for every
/// accepted alpha.
constexpr double accuracy_margin = 1e-5;

/// ln 2 = ln2_hi + ln2_lo, ln2_hi with 32 significant bits, so that e * ln2_hi is
/// exact for every binary exponent e of a double.
constexpr double ln2_hi = 0x1.62e42feep-1;
constexpr double ln2_lo = 0x1.a39ef35793c76p-33;

/// The natural logarithm of a positive normal double, from IEEE-754 basic operations
/// only. libm picks its code path by CPU (with or without FMA), so std::log may differ
/// in the last bit between machines, and so could a bucket index; this one gives the
/// same bits on every machine running the same build. Absolute error below
/// 2e-16 + 1 ulp of the result.
///
/// x = 2^e m with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s) with s = (m - 1) /
/// (m + 1), |s| <= 0.1716, and 2 atanh(s) = 2s + s z (2/3 + 2z/5 + ... + 2z^8/19)
/// with z = s^2 <= 0.0295; the first omitted term is below 1e-17.
double log_of(double x) noexcept {
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  auto e = static_cast<int>(bits >> 52) - 1023;
  bits = (bits & ((uint64_t{1} << 52) - 1)) | (uint64_t{1023} << 52);
  double m;
  std::memcpy(&m, &bits, sizeof m);
  if (m > 0x1.6a09e667f3bcdp+0) { // sqrt(2)
    m *= 0.5;
    ++e;
  }
  double f = m - 1; // exact
  double s = f / (2 + f);
  double z = s * s;
  double z2 = z * z;
  double z4 = z2 * z2;
  // 2/3 + 2z/5 + ... + 2z^8/19, grouped to shorten the dependency chain.
  double p01 = 2.0 / 3 + z * (2.0 / 5);
  double p23 = 2.0 / 7 + z * (2.0 / 9);
  double p45 = 2.0 / 11 + z * (2.0 / 13);
  double p67 = 2.0 / 15 + z * (2.0 / 17);
  double q03 = p01 + z2 * p23;
  double q47 = p45 + z2 * p67;
  double q = q03 + z4 * (q47 + z4 * (2.0 / 19));
  double ln_m = 2 * s + s * z * q;
  double de = e;
  return de * ln2_hi + (ln_m + de * ln2_lo);
}

} // namespace

bool ddsketch::valid_config(double alpha, size_t max_buckets) noexcept {
  return alpha >= min_accuracy && alpha < max_accuracy && max_buckets >= 1
         && max_buckets <= max_max_buckets;
}

uint64_t ddsketch::quantile_rank(double q, uint64_t n) noexcept {
  assert(n > 0 && q >= 0 && q <= 1);
  auto last = n - 1;
  auto r = std::ceil(q * static_cast<double>(last));
  // For n above 2^53, n - 1 may round up in double.
  if (!(r < static_cast<double>(last)))
    return last;
  return static_cast<uint64_t>(r);
}

ddsketch::ddsketch(double alpha, size_t max_buckets)
  : alpha_(alpha), max_buckets_(max_buckets) {
  if (!valid_config(alpha, max_buckets))
    throw std::invalid_argument("ddsketch: relative accuracy must be in [1e-6, 0.5) and "
                                "the bucket limit in [1, 2^24], got "
                                + std::to_string(alpha) + " and "
                                + std::to_string(max_buckets));
  derive_constants();
}

void ddsketch::derive_constants() noexcept {
  assert(valid_config(alpha_, static_cast<size_t>(max_buckets_)));
  auto a = alpha_ * (1 - accuracy_margin);
  gamma_ = (1 + a) / (1 - a);
  multiplier_ = 1 / log_of(gamma_);
  factor_ = 2 / (gamma_ + 1);
  upper_factor_ = 2 * gamma_ / (gamma_ + 1);
}

void ddsketch::after_load() noexcept {
  if (consistent())
    derive_constants();
  else
    *this = ddsketch{};
}

bool ddsketch::consistent() const noexcept {
  if (!valid_config(alpha_, static_cast<size_t>(max_buckets_)))
    return false;
  if (count_ == 0)
    return sum_ == 0 && min_ == 0 && max_ == 0 && zero_count_ == 0 && pos_.counts.empty()
           && neg_.counts.empty() && pos_.offset == 0 && neg_.offset == 0;
  auto limit = static_cast<int64_t>(max_buckets_);
  uint64_t total = zero_count_;
  return std::isfinite(min_) && std::isfinite(max_) && min_ <= max_
         && pos_.consistent(limit, total) && neg_.consistent(limit, total)
         && total == count_;
}

bool ddsketch::store::consistent(int64_t limit, uint64_t& total) const noexcept {
  if (counts.empty())
    return offset == 0;
  auto size = static_cast<int64_t>(counts.size());
  if (size > limit || counts.front() == 0 || counts.back() == 0
      || int64_t{offset} + size - 1 > std::numeric_limits<int32_t>::max())
    return false;
  for (auto c : counts)
    total += c;
  return true;
}

int32_t ddsketch::index_of(double m) const noexcept {
  // |ln m| < 710 and multiplier_ < 5.1e5 for alpha >= 1e-6: |index| < 3.7e8.
  return static_cast<int32_t>(std::ceil(log_of(m) * multiplier_));
}

double ddsketch::representative(int32_t index) const noexcept {
  // 2 gamma^i / (gamma + 1), computed so that no intermediate leaves the normal range:
  // for a positive index from gamma^(i - 1) < v <= DBL_MAX. The result itself exceeds
  // DBL_MAX for values near it; the caller clamps to max.
  if (index > 0)
    return upper_factor_ * std::pow(gamma_, index - 1);
  return factor_ * std::pow(gamma_, index);
}

void ddsketch::add(double v, uint64_t n) {
  assert(std::isfinite(v));
  if (n == 0)
    return;
  if (v == 0)
    v = 0; // -0.0 and 0.0 must not depend on order in min and max
  if (count_ == 0) {
    min_ = v;
    max_ = v;
  } else {
    min_ = std::min(min_, v);
    max_ = std::max(max_, v);
  }
  count_ += n;
  sum_ += v * static_cast<double>(n);
  auto limit = static_cast<int64_t>(max_buckets_);
  if (v >= min_indexable)
    pos_.add(index_of(v), n, limit);
  else if (v <= -min_indexable)
    neg_.add(-index_of(-v), n, limit);
  else
    zero_count_ += n;
}

bool ddsketch::merge(const ddsketch& other) {
  if (other.alpha_ != alpha_)
    return false;
  if (other.count_ == 0)
    return true;
  if (count_ == 0) {
    min_ = other.min_;
    max_ = other.max_;
  } else {
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }
  count_ += other.count_;
  sum_ += other.sum_;
  zero_count_ += other.zero_count_;
  auto limit = static_cast<int64_t>(max_buckets_);
  pos_.merge(other.pos_, limit);
  neg_.merge(other.neg_, limit);
  return true;
}

double ddsketch::quantile(double q) const {
  if (count_ == 0 || !(q >= 0 && q <= 1))
    return std::numeric_limits<double>::quiet_NaN();
  auto rank = quantile_rank(q, count_);
  if (rank == 0)
    return min_;
  if (rank == count_ - 1)
    return max_;
  auto clamp = [this](double x) { return std::min(std::max(x, min_), max_); };
  // Buckets in ascending order of value; the value of `rank` lies in the first
  // bucket whose cumulative count exceeds it.
  uint64_t seen = 0;
  for (size_t j = 0; j < neg_.counts.size(); ++j) {
    seen += neg_.counts[j];
    if (seen > rank)
      return clamp(-representative(-(neg_.offset + static_cast<int32_t>(j))));
  }
  seen += zero_count_;
  if (seen > rank)
    return clamp(0);
  for (size_t j = 0; j < pos_.counts.size(); ++j) {
    seen += pos_.counts[j];
    if (seen > rank)
      return clamp(representative(pos_.offset + static_cast<int32_t>(j)));
  }
  assert(false && "ddsketch: bucket counts do not add up to count()");
  return max_;
}

double ddsketch::min() const noexcept {
  return count_ == 0 ? std::numeric_limits<double>::quiet_NaN() : min_;
}

double ddsketch::max() const noexcept {
  return count_ == 0 ? std::numeric_limits<double>::quiet_NaN() : max_;
}

void ddsketch::clear() noexcept {
  count_ = 0;
  sum_ = 0;
  min_ = 0;
  max_ = 0;
  zero_count_ = 0;
  pos_.counts.clear();
  pos_.offset = 0;
  neg_.counts.clear();
  neg_.offset = 0;
}

size_t ddsketch::bucket_count() const noexcept {
  auto non_zero = [](const std::vector<uint64_t>& xs) {
    return static_cast<size_t>(
      std::count_if(xs.begin(), xs.end(), [](uint64_t c) { return c != 0; }));
  };
  return non_zero(pos_.counts) + non_zero(neg_.counts) + (zero_count_ != 0 ? 1 : 0);
}

size_t ddsketch::memory_bytes() const noexcept {
  return sizeof(ddsketch)
         + (pos_.counts.capacity() + neg_.counts.capacity()) * sizeof(uint64_t);
}

bool operator==(const ddsketch& x, const ddsketch& y) noexcept {
  return x.alpha_ == y.alpha_ && x.max_buckets_ == y.max_buckets_
         && x.count_ == y.count_ && x.sum_ == y.sum_ && x.min_ == y.min_
         && x.max_ == y.max_ && x.zero_count_ == y.zero_count_
         && x.pos_.offset == y.pos_.offset && x.pos_.counts == y.pos_.counts
         && x.neg_.offset == y.neg_.offset && x.neg_.counts == y.neg_.counts;
}

// Folding rule of a store with limit M: every count sits at key max(k, T) where k is
// its value's key and T = hi - M + 1 for the highest key hi ever added, if the keys
// added span more than M, else at k. Folding at a threshold and later at a higher one
// equals folding once at the higher one, so the contents depend only on the keys
// added, not on the order of adds and merges.

void ddsketch::store::add_outside(int32_t key, uint64_t n, int64_t limit) {
  if (counts.empty()) {
    offset = key;
    counts.assign(1, n);
    return;
  }
  int64_t lo = offset;
  int64_t hi = lo + static_cast<int64_t>(counts.size()) - 1;
  if (key < lo) {
    // Widen downwards as far as the limit allows; a key below that folds into the
    // lowest bucket. The range spans at most `limit`, so new_lo <= lo.
    auto new_lo = std::max<int64_t>(key, hi - limit + 1);
    if (new_lo < lo) {
      counts.insert(counts.begin(), static_cast<size_t>(lo - new_lo), 0);
      offset = static_cast<int32_t>(new_lo);
    }
    counts.front() += n;
    return;
  }
  // key > hi: widen upwards, folding the lowest buckets if the range would exceed the
  // limit.
  auto new_lo = std::max<int64_t>(lo, int64_t{key} - limit + 1);
  if (new_lo > lo) {
    uint64_t folded = 0;
    if (new_lo > hi) {
      for (auto c : counts)
        folded += c;
      counts.assign(1, folded);
    } else {
      auto k = static_cast<size_t>(new_lo - lo); // buckets below new_lo
      for (size_t j = 0; j <= k; ++j)
        folded += counts[j];
      counts.erase(counts.begin(), counts.begin() + static_cast<ptrdiff_t>(k));
      counts.front() = folded;
    }
    offset = static_cast<int32_t>(new_lo);
  }
  counts.resize(static_cast<size_t>(int64_t{key} - offset + 1), 0);
  counts.back() += n;
}

void ddsketch::store::merge(const store& other, int64_t limit) {
  if (other.counts.empty())
    return;
  int64_t olo = other.offset;
  int64_t ohi = olo + static_cast<int64_t>(other.counts.size()) - 1;
  int64_t lo = olo;
  int64_t hi = ohi;
  if (!counts.empty()) {
    lo = std::min<int64_t>(lo, offset);
    hi = std::max<int64_t>(hi, offset + static_cast<int64_t>(counts.size()) - 1);
  }
  lo = std::max(lo, hi - limit + 1);
  auto fold_into = [&](std::vector<uint64_t>& out, const store& src) {
    for (size_t j = 0; j < src.counts.size(); ++j) {
      auto key = std::max<int64_t>(src.offset + static_cast<int64_t>(j), lo);
      out[static_cast<size_t>(key - lo)] += src.counts[j];
    }
  };
  if (!counts.empty() && lo == offset
      && hi == offset + static_cast<int64_t>(counts.size()) - 1) {
    // The range stays: add in place (element-wise, so `other` may be this store).
    fold_into(counts, other);
    return;
  }
  std::vector<uint64_t> out(static_cast<size_t>(hi - lo + 1), 0);
  fold_into(out, *this);
  fold_into(out, other);
  counts.swap(out);
  offset = static_cast<int32_t>(lo);
}

} // namespace tether::series
