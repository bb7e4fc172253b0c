#include "latency_histogram.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

using tether::tools::latency_histogram;

namespace {

/// Exact nearest-rank quantile of sorted data, the definition the histogram follows.
std::uint64_t exact_quantile(const std::vector<std::uint64_t>& sorted, double q) {
  if (q <= 0.0)
    return sorted.front();
  auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

/// Checks every quantile in a fine sweep against the exact one.
void check_quantiles(const latency_histogram& h, std::vector<std::uint64_t> values) {
  std::sort(values.begin(), values.end());
  REQUIRE(h.count() == values.size());
  REQUIRE(h.min() == values.front());
  REQUIRE(h.max() == values.back());
  std::vector<double> qs{0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9,
                         0.95, 0.99, 0.995, 0.999, 0.9999, 1.0};
  for (int i = 1; i < 200; ++i)
    qs.push_back(i / 200.0);
  for (auto q : qs) {
    auto exact = static_cast<double>(exact_quantile(values, q));
    auto got = static_cast<double>(h.quantile(q));
    INFO("q = " << q << ", exact = " << exact << ", got = " << got);
    CHECK(std::abs(got - exact) <= h.relative_error() * exact);
  }
}

} // namespace

TEST_CASE("latency_histogram: an empty histogram reports zeros") {
  latency_histogram h;
  CHECK(h.count() == 0);
  CHECK(h.max() == 0);
  CHECK(h.min() == 0);
  CHECK(h.quantile(0.0) == 0);
  CHECK(h.quantile(0.5) == 0);
  CHECK(h.quantile(1.0) == 0);
  CHECK(h.mean() == 0.0);
}

TEST_CASE("latency_histogram: the requested precision bounds the relative error") {
  CHECK(latency_histogram{}.relative_error() <= 0.01);
  CHECK(latency_histogram{latency_histogram::default_highest, 0.001}.relative_error()
        <= 0.001);
  CHECK(latency_histogram{latency_histogram::default_highest, 0.1}.relative_error() <= 0.1);
  // 1 % over 1 µs .. 1 h in nanoseconds stays compact.
  CHECK(latency_histogram{}.slot_count() * sizeof(std::uint64_t) < 32 * 1024);
}

TEST_CASE("latency_histogram: slots tile the range without gaps or overlaps") {
  latency_histogram h{latency_histogram::default_highest, 0.01};
  for (size_t i = 0; i < h.slot_count(); ++i) {
    auto low = h.slot_low(i);
    auto width = h.slot_width(i);
    INFO("slot " << i << " low " << low << " width " << width);
    REQUIRE(h.slot_of(low) == i);
    REQUIRE(h.slot_of(low + width - 1) == i);
    if (i + 1 < h.slot_count())
      REQUIRE(h.slot_low(i + 1) == low + width);
  }
  CHECK(h.slot_low(h.slot_count() - 1) + h.slot_width(h.slot_count() - 1) - 1 >= h.highest());
}

TEST_CASE("latency_histogram: a single value is reported exactly") {
  for (std::uint64_t v : {0ULL, 1ULL, 999ULL, 123'456'789ULL, 3'599'999'999'999ULL}) {
    latency_histogram h;
    h.record(v);
    CHECK(h.count() == 1);
    CHECK(h.min() == v);
    CHECK(h.max() == v);
    CHECK(h.quantile(0.0) == v);
    CHECK(h.quantile(0.5) == v);
    CHECK(h.quantile(0.999) == v);
    CHECK(h.quantile(1.0) == v);
  }
}

TEST_CASE("latency_histogram: small values are exact") {
  latency_histogram h;
  std::vector<std::uint64_t> values;
  for (std::uint64_t v = 0; v < 100; ++v) {
    h.record(v);
    values.push_back(v);
  }
  for (double q : {0.01, 0.1, 0.5, 0.9, 0.99, 1.0})
    CHECK(h.quantile(q) == exact_quantile(values, q));
}

TEST_CASE("latency_histogram: the largest values are tracked") {
  latency_histogram h;
  h.record(1000);
  h.record(h.highest());
  CHECK(h.max() == h.highest());
  CHECK(h.saturated() == 0);
  CHECK(h.quantile(1.0) == h.highest());
  auto p99 = static_cast<double>(h.quantile(0.99));
  CHECK(std::abs(p99 - static_cast<double>(h.highest()))
        <= h.relative_error() * static_cast<double>(h.highest()));
  h.record(UINT64_MAX);
  CHECK(h.saturated() == 1);
  CHECK(h.max() == UINT64_MAX);
  CHECK(h.quantile(1.0) == UINT64_MAX);
  CHECK(h.count() == 3);
}

TEST_CASE("latency_histogram: quantiles of random data are within the stated error") {
  std::mt19937_64 rng{42};
  SECTION("log-uniform from 1 us to 1 h") {
    std::uniform_real_distribution<double> exponent{3.0, std::log10(3.6e12)};
    latency_histogram h;
    std::vector<std::uint64_t> values;
    for (int i = 0; i < 200'000; ++i) {
      auto v = static_cast<std::uint64_t>(std::pow(10.0, exponent(rng)));
      h.record(v);
      values.push_back(v);
    }
    check_quantiles(h, values);
  }
  SECTION("lognormal around 300 us with a long tail") {
    std::lognormal_distribution<double> dist{std::log(300'000.0), 1.0};
    latency_histogram h;
    std::vector<std::uint64_t> values;
    for (int i = 0; i < 200'000; ++i) {
      auto v = static_cast<std::uint64_t>(dist(rng));
      h.record(v);
      values.push_back(v);
    }
    check_quantiles(h, values);
  }
  SECTION("finer precision") {
    std::uniform_int_distribution<std::uint64_t> dist{1'000, 50'000'000};
    latency_histogram h{latency_histogram::default_highest, 0.001};
    std::vector<std::uint64_t> values;
    for (int i = 0; i < 100'000; ++i) {
      auto v = dist(rng);
      h.record(v);
      values.push_back(v);
    }
    check_quantiles(h, values);
  }
}

TEST_CASE("latency_histogram: record_n equals repeated record") {
  latency_histogram a;
  latency_histogram b;
  a.record_n(5000, 3);
  a.record_n(7000, 0);
  for (int i = 0; i < 3; ++i)
    b.record(5000);
  CHECK(a.count() == b.count());
  CHECK(a.quantile(0.5) == b.quantile(0.5));
  CHECK(a.mean() == Approx(5000.0));
}

TEST_CASE("latency_histogram: merge combines counts and extremes") {
  std::mt19937_64 rng{7};
  std::uniform_int_distribution<std::uint64_t> low{1'000, 1'000'000};
  std::uniform_int_distribution<std::uint64_t> high{1'000'000, 900'000'000};
  latency_histogram a;
  latency_histogram b;
  latency_histogram all;
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 50'000; ++i) {
    auto x = low(rng);
    auto y = high(rng);
    a.record(x);
    b.record(y);
    all.record(x);
    all.record(y);
    values.push_back(x);
    values.push_back(y);
  }
  SECTION("same layout: identical to recording everything in one") {
    a.merge(b);
    CHECK(a.count() == all.count());
    CHECK(a.min() == all.min());
    CHECK(a.max() == all.max());
    for (double q : {0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0})
      CHECK(a.quantile(q) == all.quantile(q));
    CHECK(a.mean() == Approx(all.mean()));
    check_quantiles(a, values);
  }
  SECTION("merging an empty histogram changes nothing") {
    latency_histogram empty;
    auto before = a.quantile(0.5);
    a.merge(empty);
    CHECK(a.count() == 50'000);
    CHECK(a.quantile(0.5) == before);
    empty.merge(a);
    CHECK(empty.count() == a.count());
    CHECK(empty.min() == a.min());
    CHECK(empty.quantile(0.5) == a.quantile(0.5));
  }
  SECTION("different layouts: error adds up at most once per histogram") {
    latency_histogram fine{latency_histogram::default_highest, 0.001};
    fine.merge(a);
    fine.merge(b);
    CHECK(fine.count() == all.count());
    CHECK(fine.min() == all.min());
    CHECK(fine.max() == all.max());
    std::sort(values.begin(), values.end());
    for (double q : {0.1, 0.5, 0.9, 0.99, 0.999}) {
      auto exact = static_cast<double>(exact_quantile(values, q));
      auto got = static_cast<double>(fine.quantile(q));
      CHECK(std::abs(got - exact)
            <= (a.relative_error() + fine.relative_error()) * exact + 1.0);
    }
  }
}

TEST_CASE("latency_histogram: reset empties but keeps the layout") {
  latency_histogram h;
  h.record(12345);
  auto slots = h.slot_count();
  h.reset();
  CHECK(h.count() == 0);
  CHECK(h.max() == 0);
  CHECK(h.quantile(0.5) == 0);
  CHECK(h.slot_count() == slots);
  h.record(7);
  CHECK(h.quantile(0.5) == 7);
}
