#pragma once

#include <cstdint>

namespace tether::tools::load {

/// Draws ranks `0 .. n-1` from a Zipf distribution: rank `k` has probability
/// `(k + 1)^-s / H(n, s)`, with `H(n, s)` the generalized harmonic number. Rank 0 is the
/// most frequent; `s = 0` is the uniform distribution, larger `s` is more skewed.
///
/// Method: rejection-inversion (W. Hörmann and G. Derflinger, "Rejection-inversion to
/// generate variates from monotone discrete distributions", ACM TOMACS 6(3), 1996). The
/// ranks are laid out on the real line as intervals under the hat `x^-s`; a uniform point
/// in the hat's integral is inverted to `x`, rounded to a rank and accepted with the
/// ratio of the rank's mass to its interval. Expected cost per draw is O(1) for any `n`
/// (a couple of `exp`/`log`), with no table, so a billion series cost no memory.
/// Thread safety: immutable after construction; `draw` may be called concurrently with
/// separate generators.
class zipf_sampler {
public:
  /// Largest accepted exponent.
  static constexpr double max_exponent = 10.0;

  /// A sampler over `n` ranks (at least 1) with exponent `s` (clamped to
  /// [0, max_exponent]).
  zipf_sampler(std::uint64_t n, double s);

  /// One rank in `[0, n)`. `uniform01` returns doubles in [0, 1), e.g.
  /// `(engine() >> 11) * 0x1p-53` for a 64-bit engine.
  template <class Uniform01>
  std::uint64_t draw(Uniform01&& uniform01) const {
    for (;;) {
      auto u = integral_n_ + uniform01() * (integral_1_ - integral_n_);
      auto x = integral_inverse(u);
      auto k = round_rank(x);
      // Squeeze: near the middle of a rank's interval the point is under the mass of
      // the rank for certain; otherwise compare with the exact bound.
      if (static_cast<double>(k) - x <= squeeze_
          || u >= integral(static_cast<double>(k) + 0.5) - hat(static_cast<double>(k)))
        return k - 1;
    }
  }

  /// Draws with a 64-bit engine such as `std::mt19937_64`.
  template <class Engine>
  std::uint64_t operator()(Engine& engine) const {
    return draw([&engine] { return static_cast<double>(engine() >> 11) * 0x1p-53; });
  }

  std::uint64_t size() const noexcept {
    return n_;
  }

  double exponent() const noexcept {
    return s_;
  }

  /// The exact probability of rank `k` (O(n): for tests and small `n`).
  double probability(std::uint64_t k) const;

private:
  /// `x^-s`, the hat over rank `x` (ranks counted from 1 here).
  double hat(double x) const;
  /// An antiderivative of the hat: `(x^(1-s) - 1) / (1 - s)`, `log x` for `s = 1`.
  double integral(double x) const;
  /// The inverse of `integral`.
  double integral_inverse(double y) const;
  /// `x` rounded to the nearest rank in [1, n].
  std::uint64_t round_rank(double x) const noexcept;

  std::uint64_t n_;
  double s_;
  double integral_1_ = 0; ///< integral(1.5) - hat(1): rank 1's interval starts here
  double integral_n_ = 0; ///< integral(n + 0.5): rank n's interval ends here
  double squeeze_ = 0;
};

} // namespace tether::tools::load
