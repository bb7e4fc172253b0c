#include "tether-load/zipf_sampler.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

using tether::tools::load::zipf_sampler;

namespace {

/// Pearson's chi-square statistic of `draws` samples against the exact distribution.
double chi_square(const zipf_sampler& z, std::uint64_t draws, std::uint64_t seed) {
  std::mt19937_64 engine{seed};
  std::vector<std::uint64_t> seen(z.size() + 1, 0);
  for (std::uint64_t i = 0; i < draws; ++i)
    ++seen[std::min(z(engine), z.size())];
  CHECK(seen[z.size()] == 0); // out of range
  double stat = 0.0;
  for (std::uint64_t k = 0; k < z.size(); ++k) {
    auto expected = z.probability(k) * static_cast<double>(draws);
    auto diff = static_cast<double>(seen[k]) - expected;
    stat += diff * diff / expected;
  }
  return stat;
}

} // namespace

TEST_CASE("zipf_sampler: probabilities are the normalised powers") {
  zipf_sampler z{4, 1.0};
  // 1, 1/2, 1/3, 1/4 over 25/12.
  CHECK(z.probability(0) == Approx(12.0 / 25.0));
  CHECK(z.probability(1) == Approx(6.0 / 25.0));
  CHECK(z.probability(3) == Approx(3.0 / 25.0));
  CHECK(z.probability(4) == 0.0);
  zipf_sampler flat{5, 0.0};
  CHECK(flat.probability(2) == Approx(0.2));
}

TEST_CASE("zipf_sampler: draws follow the distribution (chi-square, 9 degrees of freedom)") {
  // The 99.99th percentile of chi-square with 9 degrees of freedom is about 33.7; a
  // sampler whose probabilities are off by a few percent at any rank lands far above.
  // Fixed seeds: the test is deterministic.
  for (double s : {0.0, 0.5, 0.99, 1.0, 1.01, 1.5, 3.0}) {
    CAPTURE(s);
    zipf_sampler z{10, s};
    CHECK(chi_square(z, 400'000, 42) < 33.7);
  }
}

TEST_CASE("zipf_sampler: a wrong distribution fails the same check") {
  // The check above has teeth: draws of s = 1.1 judged against s = 1.0.
  zipf_sampler drawn{10, 1.1};
  zipf_sampler judged{10, 1.0};
  std::mt19937_64 engine{7};
  std::vector<std::uint64_t> seen(10, 0);
  const std::uint64_t draws = 400'000;
  for (std::uint64_t i = 0; i < draws; ++i)
    ++seen[drawn(engine)];
  double stat = 0.0;
  for (std::uint64_t k = 0; k < 10; ++k) {
    auto expected = judged.probability(k) * static_cast<double>(draws);
    stat += (static_cast<double>(seen[k]) - expected) * (static_cast<double>(seen[k]) - expected)
            / expected;
  }
  CHECK(stat > 100.0);
}

TEST_CASE("zipf_sampler: a million ranks, the top ranks get their share") {
  zipf_sampler z{1'000'000, 1.0};
  std::mt19937_64 engine{1};
  const std::uint64_t draws = 1'000'000;
  std::vector<std::uint64_t> top(5, 0);
  std::uint64_t tail = 0;
  std::uint64_t out_of_range = 0;
  for (std::uint64_t i = 0; i < draws; ++i) {
    auto k = z(engine);
    if (k >= 1'000'000)
      ++out_of_range;
    if (k < top.size())
      ++top[k];
    if (k >= 500'000)
      ++tail;
  }
  CHECK(out_of_range == 0);
  for (std::uint64_t k = 0; k < top.size(); ++k) {
    auto p = z.probability(k);
    auto expected = p * static_cast<double>(draws);
    auto sigma = std::sqrt(static_cast<double>(draws) * p * (1 - p));
    CAPTURE(k);
    CHECK(std::abs(static_cast<double>(top[k]) - expected) < 5 * sigma);
  }
  // The upper half of the ranks holds ln(2) / H(1e6, 1) = 4.8 % of the mass.
  CHECK(static_cast<double>(tail) / static_cast<double>(draws) == Approx(0.048).epsilon(0.05));
}

TEST_CASE("zipf_sampler: one rank, huge ranges and extreme exponents stay in range") {
  std::mt19937_64 engine{3};
  zipf_sampler one{1, 1.0};
  CHECK(one(engine) == 0);
  zipf_sampler huge{1ULL << 40, 1.2};
  zipf_sampler steep{100, zipf_sampler::max_exponent};
  std::uint64_t zeros = 0;
  std::uint64_t out_of_range = 0;
  for (int i = 0; i < 10'000; ++i) {
    if (huge(engine) >= (1ULL << 40))
      ++out_of_range;
    if (steep(engine) == 0)
      ++zeros;
  }
  CHECK(out_of_range == 0);
  // s = 10: rank 0 holds 1 / (1 + 2^-10 + ...) = 99.9 % of the mass.
  CHECK(zeros > 9'950);
  // Out-of-range exponents are clamped.
  CHECK(zipf_sampler{10, -1.0}.exponent() == 0.0);
  CHECK(zipf_sampler{10, 50.0}.exponent() == zipf_sampler::max_exponent);
}

TEST_CASE("zipf_sampler: the same seed gives the same ranks") {
  zipf_sampler z{10'000, 1.0};
  std::mt19937_64 a{99};
  std::mt19937_64 b{99};
  std::uint64_t differ = 0;
  for (int i = 0; i < 1000; ++i)
    if (z(a) != z(b))
      ++differ;
  CHECK(differ == 0);
}
