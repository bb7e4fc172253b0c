#include "latency_histogram.hpp"

#include <algorithm>
#include <cmath>

namespace tether::tools {

namespace {

/// Number of significant bits of `x` (0 for 0).
unsigned bit_width(std::uint64_t x) noexcept {
  return x == 0 ? 0u : 64u - static_cast<unsigned>(__builtin_clzll(x));
}

} // namespace

latency_histogram::latency_histogram(std::uint64_t highest, double max_relative_error) {
  if (!(max_relative_error >= 1e-6)) // also catches NaN
    max_relative_error = 1e-6;
  max_relative_error = std::min(max_relative_error, 0.5);
  // Reported error is at most 1/S with S = 2^bits sub-buckets: pick the smallest S that
  // satisfies the requested bound.
  bits_ = 1;
  while (1.0 / static_cast<double>(1ULL << bits_) > max_relative_error)
    ++bits_;
  sub_count_ = 1ULL << bits_;
  half_count_ = sub_count_ / 2;
  highest_ = std::max<std::uint64_t>(highest, sub_count_);
  // Slots: [0, S) one each, then S/2 per power of two up to the one holding `highest_`.
  auto top_shift = bit_width(highest_) - bits_; // >= 1 because highest_ >= S
  counts_.assign(sub_count_ + top_shift * half_count_, 0);
}

std::size_t latency_histogram::slot_of(std::uint64_t value) const noexcept {
  if (value < sub_count_)
    return static_cast<std::size_t>(value);
  auto shift = bit_width(value) - bits_; // >= 1
  auto sub = value >> shift;              // in [S/2, S)
  auto index = sub_count_ + (shift - 1) * half_count_ + (sub - half_count_);
  return static_cast<std::size_t>(std::min<std::uint64_t>(index, counts_.size() - 1));
}

std::uint64_t latency_histogram::slot_low(std::size_t index) const noexcept {
  if (index < sub_count_)
    return index;
  auto j = index - sub_count_;
  auto shift = j / half_count_ + 1;
  auto sub = j % half_count_ + half_count_;
  return sub << shift;
}

std::uint64_t latency_histogram::slot_width(std::size_t index) const noexcept {
  if (index < sub_count_)
    return 1;
  return 1ULL << ((index - sub_count_) / half_count_ + 1);
}

void latency_histogram::record_n(std::uint64_t value, std::uint64_t n) {
  if (n == 0)
    return;
  counts_[slot_of(value)] += n;
  count_ += n;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  if (value > highest_)
    saturated_ += n;
  sum_ += static_cast<long double>(value) * static_cast<long double>(n);
}

void latency_histogram::merge(const latency_histogram& other) {
  if (other.count_ == 0)
    return;
  if (other.bits_ == bits_ && other.counts_.size() == counts_.size()
      && other.highest_ == highest_) {
    for (size_t i = 0; i < counts_.size(); ++i)
      counts_[i] += other.counts_[i];
    count_ += other.count_;
    saturated_ += other.saturated_;
    sum_ += other.sum_;
  } else {
    // Different layouts: re-record each slot at its representative. The exact extremes
    // and sum are carried over below.
    auto saved_sum = sum_;
    for (size_t i = 0; i < other.counts_.size(); ++i)
      if (other.counts_[i] != 0)
        record_n(std::clamp(other.representative(i), other.min_, other.max_),
                 other.counts_[i]);
    sum_ = saved_sum + other.sum_;
  }
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void latency_histogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  saturated_ = 0;
  sum_ = 0;
}

std::uint64_t latency_histogram::quantile(double q) const {
  if (count_ == 0)
    return 0;
  if (!(q > 0.0)) // also catches NaN
    return min_;
  if (q >= 1.0)
    return max_;
  // Nearest rank. Computed in double on purpose: q = 0.01 is slightly above 1/100 as a
  // double, and a wider type would turn ceil(0.01 * 100000) into 1001 instead of 1000.
  auto rank_f = std::ceil(q * static_cast<double>(count_));
  auto rank = rank_f >= static_cast<double>(count_) ? count_
                                                      : static_cast<std::uint64_t>(rank_f);
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank)
      return std::clamp(representative(i), min_, max_);
  }
  return max_; // unreachable: the counts add up to count_
}

double latency_histogram::mean() const noexcept {
  if (count_ == 0)
    return 0.0;
  return static_cast<double>(sum_ / static_cast<long double>(count_));
}

double latency_histogram::relative_error() const noexcept {
  return 1.0 / static_cast<double>(sub_count_);
}

} // namespace tether::tools
