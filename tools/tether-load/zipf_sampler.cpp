#include "zipf_sampler.hpp"

#include <algorithm>
#include <cmath>

namespace tether::tools::load {

namespace {

/// `log1p(t) / t`, continuous at 0 (where it is 1).
double log1p_over(double t) {
  if (std::abs(t) > 1e-8)
    return std::log1p(t) / t;
  return 1.0 - t * (0.5 - t / 3.0);
}

/// `expm1(t) / t`, continuous at 0 (where it is 1).
double expm1_over(double t) {
  if (std::abs(t) > 1e-8)
    return std::expm1(t) / t;
  return 1.0 + t * (0.5 + t / 6.0);
}

} // namespace

zipf_sampler::zipf_sampler(std::uint64_t n, double s)
  : n_(std::max<std::uint64_t>(n, 1)),
    s_(std::isnan(s) ? 1.0 : std::clamp(s, 0.0, max_exponent)) {
  integral_1_ = integral(1.5) - 1.0;
  integral_n_ = integral(static_cast<double>(n_) + 0.5);
  squeeze_ = 2.0 - integral_inverse(integral(2.5) - hat(2.0));
}

double zipf_sampler::hat(double x) const {
  return std::exp(-s_ * std::log(x));
}

double zipf_sampler::integral(double x) const {
  // (x^(1-s) - 1) / (1 - s) = log(x) * expm1((1 - s) log x) / ((1 - s) log x), which
  // stays accurate as s approaches 1.
  auto log_x = std::log(x);
  return expm1_over((1.0 - s_) * log_x) * log_x;
}

double zipf_sampler::integral_inverse(double y) const {
  // (1 + (1 - s) y)^(1 / (1 - s)) = exp(y * log1p((1 - s) y) / ((1 - s) y)). The
  // argument of log1p cannot fall below -1 for y in the sampled range, but rounding at
  // the edge may touch it: clamp.
  auto t = std::max((1.0 - s_) * y, -1.0 + 1e-16);
  return std::exp(log1p_over(t) * y);
}

std::uint64_t zipf_sampler::round_rank(double x) const noexcept {
  auto r = std::floor(x + 0.5);
  if (!(r >= 1.0))
    return 1;
  if (r >= static_cast<double>(n_))
    return n_;
  return static_cast<std::uint64_t>(r);
}

double zipf_sampler::probability(std::uint64_t k) const {
  if (k >= n_)
    return 0.0;
  double norm = 0.0;
  // Smallest terms first: less rounding error.
  for (auto i = n_; i >= 1; --i)
    norm += hat(static_cast<double>(i));
  return hat(static_cast<double>(k + 1)) / norm;
}

} // namespace tether::tools::load
