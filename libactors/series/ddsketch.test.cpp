#include "series/ddsketch.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include <catch2/catch.hpp>

using tether::series::ddsketch;

namespace {

constexpr double dbl_max = std::numeric_limits<double>::max();
constexpr double dbl_min = std::numeric_limits<double>::min();

const double quantiles[] = {0, 0.01, 0.1, 0.25, 0.5, 0.9, 0.99, 0.999, 1};

/// The rank rule, written out independently of the sketch: the value at 0-based
/// position ceil(q * (n - 1)) of the sorted data, the product in double precision.
double exact_quantile(const std::vector<double>& sorted, double q) {
  auto r = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size() - 1)));
  return sorted[std::min(r, sorted.size() - 1)];
}

/// |estimate - exact| <= alpha |exact|, evaluated without rounding of its own.
bool within(double estimate, double exact, double alpha) {
  auto e = static_cast<long double>(estimate);
  auto x = static_cast<long double>(exact);
  return std::fabs(e - x) <= static_cast<long double>(alpha) * std::fabs(x);
}

using bucket = std::tuple<int, int32_t, uint64_t>;

std::vector<bucket> buckets_of(const ddsketch& s) {
  std::vector<bucket> out;
  s.for_each_bucket(
    [&](int sign, int32_t index, uint64_t count) { out.emplace_back(sign, index, count); });
  return out;
}

ddsketch sketch_of(const std::vector<double>& xs, double alpha = 0.01,
                   size_t max_buckets = ddsketch::default_max_buckets) {
  ddsketch s{alpha, max_buckets};
  for (auto x : xs)
    s.add(x);
  return s;
}

enum class shape { uniform, lognormal, exponential, mixed };

std::string name(shape s) {
  switch (s) {
    case shape::uniform:
      return "uniform";
    case shape::lognormal:
      return "lognormal";
    case shape::exponential:
      return "exponential";
    default:
      return "mixed";
  }
}

/// 1e5 values of the given shape; `mixed` has negatives, positives, zeros and -0.0.
std::vector<double> make_data(shape s, uint64_t seed, size_t n = 100000) {
  std::mt19937_64 rng{seed};
  std::uniform_real_distribution<double> uniform{0, 1000};
  std::lognormal_distribution<double> lognormal{0, 2};
  std::exponential_distribution<double> exponential{1};
  std::normal_distribution<double> normal{0, 50};
  std::uniform_int_distribution<int> pick{0, 99};
  std::vector<double> xs;
  xs.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    switch (s) {
      case shape::uniform:
        xs.push_back(uniform(rng));
        break;
      case shape::lognormal:
        xs.push_back(lognormal(rng));
        break;
      case shape::exponential:
        xs.push_back(exponential(rng));
        break;
      case shape::mixed: {
        auto p = pick(rng);
        xs.push_back(p < 10 ? 0.0 : p < 15 ? -0.0 : normal(rng));
        break;
      }
    }
  }
  return xs;
}

void check_against_exact(const std::vector<double>& xs, double alpha,
                         size_t max_buckets = ddsketch::default_max_buckets) {
  auto s = sketch_of(xs, alpha, max_buckets);
  auto sorted = xs;
  std::sort(sorted.begin(), sorted.end());
  REQUIRE(s.count() == xs.size());
  CHECK(s.min() == sorted.front());
  CHECK(s.max() == sorted.back());
  for (auto q : quantiles) {
    auto est = s.quantile(q);
    auto exact = exact_quantile(sorted, q);
    INFO("alpha " << alpha << " q " << q << " estimate " << est << " exact " << exact);
    CHECK(within(est, exact, alpha));
  }
}

/// Whether the sketch's estimate for `x` alone is within the bound: x is the middle
/// of three values, so q = 0.5 (rank 1) reads x's bucket, not the exact min or max.
/// The others are zero and a value two buckets further from zero, so that neither
/// the bucket limit nor clamping to [min, max] comes into play (except for the last
/// bucket below DBL_MAX, whose representative overflows and is clamped).
bool estimate_within(double alpha, double x) {
  ddsketch s{alpha};
  auto g = s.gamma();
  auto far = std::min(std::fabs(x) * g * g, dbl_max);
  s.add(0);
  s.add(x);
  s.add(x > 0 ? far : -far);
  return within(s.quantile(0.5), x, alpha);
}

} // namespace

TEST_CASE("quantiles of random data are within the relative accuracy",
          "[ddsketch]") {
  for (auto sh : {shape::uniform, shape::lognormal, shape::exponential, shape::mixed}) {
    for (uint64_t seed : {1u, 2u, 3u}) {
      INFO(name(sh) << " seed " << seed);
      auto xs = make_data(sh, seed);
      check_against_exact(xs, 0.01);
      check_against_exact(xs, 0.05);
      check_against_exact(xs, 0.001, 1 << 16);
    }
  }
}

TEST_CASE("the bound holds for the computed estimates, at bucket boundaries and "
          "across the double range",
          "[ddsketch]") {
  std::mt19937_64 rng{42};
  for (double alpha : {1e-6, 1e-4, 0.01, 0.2, 0.49}) {
    INFO("alpha " << alpha);
    ddsketch probe{alpha};
    auto g = probe.gamma();
    // gamma is derived from alpha minus a margin, never from more.
    CHECK((g - 1) / (g + 1) < alpha);
    CHECK((g - 1) / (g + 1) > alpha * (1 - 1e-4));
    size_t failures = 0;
    double first_failure = 0;
    auto check = [&](double x) {
      if (!std::isfinite(x) || std::fabs(x) < dbl_min)
        return;
      for (auto v : {x, -x})
        if (!estimate_within(alpha, v) && failures++ == 0)
          first_failure = v;
    };
    // Values within a few ulp of bucket boundaries gamma^k, for k across the whole
    // range of normal doubles.
    auto k_max = static_cast<int64_t>(std::log(dbl_max) / std::log(g)) + 1;
    auto step = std::max<int64_t>(1, 2 * k_max / 4000);
    for (int64_t k = -k_max; k <= k_max; k += step) {
      auto b = std::pow(g, static_cast<double>(k));
      auto lo = b;
      auto hi = b;
      check(b);
      for (int i = 0; i < 3; ++i) {
        lo = std::nextafter(lo, 0.0);
        hi = std::nextafter(hi, dbl_max);
        check(lo);
        check(hi);
      }
    }
    // Extremes and random bit patterns (every exponent equally likely).
    for (auto x : {dbl_min, std::nextafter(dbl_min, 1.0), 1.0, dbl_max,
                   std::nextafter(dbl_max, 0.0)})
      check(x);
    for (int i = 0; i < 20000; ++i) {
      uint64_t bits = rng() & ~(uint64_t{1} << 63);
      double x;
      std::memcpy(&x, &bits, sizeof x);
      check(x);
    }
    INFO("first failure " << first_failure);
    CHECK(failures == 0);
  }
}

TEST_CASE("a value's bucket index is ceil(log_gamma(|v|))", "[ddsketch]") {
  std::mt19937_64 rng{5};
  for (double alpha : {1e-6, 0.01, 0.3}) {
    INFO("alpha " << alpha);
    ddsketch probe{alpha};
    auto ln_gamma = std::log(static_cast<long double>(probe.gamma()));
    size_t mismatches = 0;
    size_t compared = 0;
    for (int i = 0; i < 20000; ++i) {
      uint64_t bits = rng() & ~(uint64_t{1} << 63);
      double x;
      std::memcpy(&x, &bits, sizeof x);
      if (!std::isfinite(x) || x < dbl_min)
        continue;
      auto t = std::log(static_cast<long double>(x)) / ln_gamma;
      if (std::fabs(t - std::round(t)) < 1e-6)
        continue; // too close to a boundary for this reference to decide
      auto expected = static_cast<int32_t>(std::ceil(t));
      for (double v : {x, -x}) {
        ddsketch s{alpha};
        s.add(v);
        auto bs = buckets_of(s);
        ++compared;
        if (bs.size() != 1 || bs[0] != bucket{v > 0 ? 1 : -1, expected, 1})
          ++mismatches;
      }
    }
    CHECK(compared > 30000);
    CHECK(mismatches == 0);
  }
}

TEST_CASE("the rank rule", "[ddsketch]") {
  CHECK(ddsketch::quantile_rank(0, 1) == 0);
  CHECK(ddsketch::quantile_rank(1, 1) == 0);
  CHECK(ddsketch::quantile_rank(0.5, 1) == 0);
  CHECK(ddsketch::quantile_rank(0.5, 4) == 2); // ceil(1.5)
  CHECK(ddsketch::quantile_rank(0.5, 101) == 50);
  CHECK(ddsketch::quantile_rank(0.01, 101) == 1);
  CHECK(ddsketch::quantile_rank(0.999, 101) == 100); // ceil(99.9)
  CHECK(ddsketch::quantile_rank(1, 101) == 100);
  CHECK(ddsketch::quantile_rank(1, UINT64_MAX) == UINT64_MAX - 1);

  // The sketch reads the value of that rank: values 1.2 times apart, each in a bucket
  // of its own, so only the value of exactly that rank is within the bound.
  ddsketch s;
  std::vector<double> xs;
  for (int i = 0; i < 101; ++i)
    xs.push_back(std::pow(1.2, i));
  for (auto x : xs)
    s.add(x);
  for (auto q : {0.01, 0.123, 0.5, 0.999}) {
    auto exact = xs[ddsketch::quantile_rank(q, 101)];
    INFO("q " << q);
    CHECK(within(s.quantile(q), exact, 0.01));
  }
}

TEST_CASE("an empty sketch", "[ddsketch]") {
  ddsketch s;
  CHECK(s.empty());
  CHECK(s.count() == 0);
  CHECK(s.sum() == 0);
  CHECK(std::isnan(s.min()));
  CHECK(std::isnan(s.max()));
  CHECK(s.bucket_count() == 0);
  for (auto q : quantiles)
    CHECK(std::isnan(s.quantile(q)));
  CHECK(s.relative_accuracy() == 0.01);
  CHECK(s.max_buckets() == 2048);

  ddsketch other;
  CHECK(s.merge(other));
  CHECK(s.empty());
  CHECK(s == ddsketch{});
  s.add(0, 0); // n = 0 adds nothing
  CHECK(s.empty());
}

TEST_CASE("a single value is every quantile, exactly", "[ddsketch]") {
  for (double v : {3.7, -2.5, 0.0, -0.0, 1e-310, dbl_min, dbl_max, -dbl_max, 1e300}) {
    INFO("value " << v);
    ddsketch s;
    s.add(v);
    CHECK(!s.empty());
    CHECK(s.count() == 1);
    CHECK(s.sum() == v);
    CHECK(s.min() == v);
    CHECK(s.max() == v);
    CHECK(s.bucket_count() == 1);
    for (auto q : quantiles)
      CHECK(s.quantile(q) == v);
  }
}

TEST_CASE("out-of-range quantile arguments give NaN", "[ddsketch]") {
  ddsketch s;
  s.add(1);
  CHECK(std::isnan(s.quantile(-0.01)));
  CHECK(std::isnan(s.quantile(1.01)));
  CHECK(std::isnan(s.quantile(std::numeric_limits<double>::quiet_NaN())));
}

TEST_CASE("zero and magnitudes below the smallest indexable value share the zero count",
          "[ddsketch]") {
  ddsketch s;
  s.add(0.0);
  s.add(-0.0);
  s.add(1e-310);
  s.add(-1e-320);
  s.add(5);
  auto bs = buckets_of(s);
  REQUIRE(bs.size() == 2);
  CHECK(bs[0] == bucket{0, 0, 4});
  CHECK(std::get<0>(bs[1]) == 1);
  CHECK(s.min() == -1e-320);
  CHECK(s.max() == 5);
  CHECK(s.quantile(0.5) == 0);
  // -0.0 is stored as 0.0: min and max do not depend on the order of zeros.
  ddsketch a;
  a.add(0.0);
  a.add(-0.0);
  ddsketch b;
  b.add(-0.0);
  b.add(0.0);
  CHECK(a == b);
  CHECK(!std::signbit(b.min()));
}

TEST_CASE("add with a count equals adding one at a time", "[ddsketch]") {
  auto xs = make_data(shape::mixed, 7, 2000);
  ddsketch once;
  ddsketch repeated;
  for (auto x : xs) {
    once.add(x, 5);
    for (int i = 0; i < 5; ++i)
      repeated.add(x);
  }
  CHECK(buckets_of(once) == buckets_of(repeated));
  CHECK(once.count() == repeated.count());
  CHECK(once.min() == repeated.min());
  CHECK(once.max() == repeated.max());
  CHECK(once.sum() == Approx(repeated.sum()).epsilon(1e-9));
  for (auto q : quantiles)
    CHECK(once.quantile(q) == repeated.quantile(q));
}

TEST_CASE("merging equals sketching the concatenated data", "[ddsketch]") {
  for (auto sh : {shape::uniform, shape::lognormal, shape::exponential, shape::mixed}) {
    for (size_t max_buckets : {size_t{2048}, size_t{64}}) {
      INFO(name(sh) << " bucket limit " << max_buckets);
      auto xs = make_data(sh, 11);
      auto half = xs.size() / 3;
      std::vector<double> first(xs.begin(), xs.begin() + half);
      std::vector<double> second(xs.begin() + half, xs.end());
      auto whole = sketch_of(xs, 0.01, max_buckets);
      auto merged = sketch_of(first, 0.01, max_buckets);
      REQUIRE(merged.merge(sketch_of(second, 0.01, max_buckets)));
      CHECK(buckets_of(merged) == buckets_of(whole));
      CHECK(merged.count() == whole.count());
      CHECK(merged.min() == whole.min());
      CHECK(merged.max() == whole.max());
      CHECK(merged.sum() == Approx(whole.sum()).epsilon(1e-9).margin(1e-6));
      for (auto q : quantiles)
        CHECK(merged.quantile(q) == whole.quantile(q));
      for (double q = 0; q <= 1; q += 0.001)
        CHECK(merged.quantile(q) == whole.quantile(q));
    }
  }
}

TEST_CASE("merge is commutative", "[ddsketch]") {
  for (size_t max_buckets : {size_t{2048}, size_t{32}}) {
    auto a = sketch_of(make_data(shape::mixed, 21, 5000), 0.01, max_buckets);
    auto b = sketch_of(make_data(shape::lognormal, 22, 7000), 0.01, max_buckets);
    auto ab = a;
    REQUIRE(ab.merge(b));
    auto ba = b;
    REQUIRE(ba.merge(a));
    CHECK(ab == ba);
  }
}

TEST_CASE("bucket contents do not depend on the order of adds and merges",
          "[ddsketch]") {
  // With a small bucket limit both stores collapse, downwards and upwards.
  for (size_t max_buckets : {size_t{2048}, size_t{40}, size_t{1}}) {
    INFO("bucket limit " << max_buckets);
    auto xs = make_data(shape::mixed, 5, 20000);
    auto reference = sketch_of(xs, 0.01, max_buckets);

    auto ascending = xs;
    std::sort(ascending.begin(), ascending.end());
    auto descending = ascending;
    std::reverse(descending.begin(), descending.end());
    auto shuffled = xs;
    std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64{9});
    for (auto* order : {&ascending, &descending, &shuffled})
      CHECK(buckets_of(sketch_of(*order, 0.01, max_buckets)) == buckets_of(reference));

    // Seven parts merged sequentially, in reverse, and as a tree.
    std::vector<ddsketch> parts;
    for (size_t p = 0; p < 7; ++p) {
      std::vector<double> part;
      for (size_t i = p; i < shuffled.size(); i += 7)
        part.push_back(shuffled[i]);
      parts.push_back(sketch_of(part, 0.01, max_buckets));
    }
    ddsketch sequential{0.01, max_buckets};
    for (auto& p : parts)
      REQUIRE(sequential.merge(p));
    ddsketch reverse{0.01, max_buckets};
    for (auto i = parts.rbegin(); i != parts.rend(); ++i)
      REQUIRE(reverse.merge(*i));
    auto tree = parts;
    while (tree.size() > 1) {
      std::vector<ddsketch> next;
      for (size_t i = 0; i + 1 < tree.size(); i += 2) {
        next.push_back(tree[i + 1]);
        REQUIRE(next.back().merge(tree[i]));
      }
      if (tree.size() % 2 == 1)
        next.push_back(tree.back());
      tree.swap(next);
    }
    for (auto* s : {&sequential, &reverse, &tree.front()}) {
      CHECK(buckets_of(*s) == buckets_of(reference));
      CHECK(s->count() == reference.count());
      CHECK(s->min() == reference.min());
      CHECK(s->max() == reference.max());
      for (auto q : quantiles)
        CHECK(s->quantile(q) == reference.quantile(q));
    }
  }
}

TEST_CASE("merging a sketch into itself doubles every count", "[ddsketch]") {
  auto xs = make_data(shape::mixed, 3, 3000);
  auto s = sketch_of(xs);
  ddsketch twice;
  for (auto x : xs)
    twice.add(x, 2);
  REQUIRE(s.merge(s));
  CHECK(s == twice);
}

TEST_CASE("merge refuses a sketch of another accuracy", "[ddsketch]") {
  auto a = sketch_of({1, 2, 3}, 0.01);
  auto b = sketch_of({4, 5}, 0.02);
  auto before = a;
  CHECK_FALSE(a.merge(b));
  CHECK(a == before);
}

TEST_CASE("collapsing keeps count, sum, min and max exact and the high quantiles "
          "within the bound",
          "[ddsketch]") {
  constexpr size_t limit = 200;
  std::mt19937_64 rng{17};
  std::lognormal_distribution<double> lognormal{0, 1};
  std::vector<double> xs;
  for (int i = 0; i < 100000; ++i)
    xs.push_back(lognormal(rng));
  for (bool negate : {false, true}) {
    INFO((negate ? "negated" : "positive") << " data");
    auto data = xs;
    if (negate)
      for (auto& x : data)
        x = -x;
    ddsketch s{0.01, limit};
    double sum = 0;
    for (auto x : data) {
      s.add(x);
      sum += x;
    }
    auto sorted = data;
    std::sort(sorted.begin(), sorted.end());
    CHECK(s.count() == data.size());
    CHECK(s.sum() == sum);
    CHECK(s.min() == sorted.front());
    CHECK(s.max() == sorted.back());
    CHECK(s.bucket_count() <= limit);
    CHECK(s.memory_bytes() <= sizeof(ddsketch) + 2 * limit * sizeof(uint64_t));

    // Both stores collapse their lowest values: the smallest magnitudes of positive
    // data, the largest magnitudes of negated data. The collapsed bucket is the first
    // in ascending order of value; its representative stands for everything folded
    // into it.
    auto bs = buckets_of(s);
    REQUIRE(bs.size() > 2);
    auto collapsed = bs.front();
    auto upper = std::pow(s.gamma(), std::get<1>(collapsed)); // its magnitude range
    auto lower = upper / s.gamma();
    auto in_range = std::count_if(data.begin(), data.end(), [&](double x) {
      auto m = std::fabs(x);
      return m <= upper && m > lower;
    });
    // Collapsing happened: the bucket holds more than the values of its own range.
    CHECK(std::get<2>(collapsed) > static_cast<uint64_t>(in_range));
    auto outside_collapsed = [&](double exact) {
      return negate ? std::fabs(exact) < lower * (1 - 1e-9)
                    : exact > upper * (1 + 1e-9);
    };

    // The bound holds for every quantile whose exact value lies above the collapsed
    // range.
    size_t checked = 0;
    for (int i = 0; i <= 1000; ++i) {
      auto q = i / 1000.0;
      auto exact = exact_quantile(sorted, q);
      if (!outside_collapsed(exact))
        continue;
      ++checked;
      INFO("q " << q << " estimate " << s.quantile(q) << " exact " << exact);
      CHECK(within(s.quantile(q), exact, 0.01));
    }
    CHECK(checked >= 30);
    for (auto q : {0.99, 0.999, 1.0}) {
      auto exact = exact_quantile(sorted, q);
      CHECK(outside_collapsed(exact));
      CHECK(within(s.quantile(q), exact, 0.01));
    }
    // The low quantiles are not guaranteed any more: the median is off.
    CHECK_FALSE(within(s.quantile(0.5), exact_quantile(sorted, 0.5), 0.01));
  }
}

TEST_CASE("a bucket limit of one keeps the largest magnitude bucket", "[ddsketch]") {
  ddsketch s{0.01, 1};
  for (double x : {1.0, 1000.0, 5.0, 1e6, 2.0})
    s.add(x);
  CHECK(s.bucket_count() == 1);
  CHECK(s.count() == 5);
  CHECK(s.min() == 1);
  CHECK(s.max() == 1e6);
  CHECK(within(s.quantile(0.9), 1e6, 0.01));
}

TEST_CASE("adding within the established range allocates nothing", "[ddsketch]") {
  auto xs = make_data(shape::mixed, 8);
  auto s = sketch_of(xs);
  auto bytes = s.memory_bytes();
  auto buckets = s.bucket_count();
  for (auto x : xs)
    s.add(x);
  CHECK(s.memory_bytes() == bytes);
  CHECK(s.bucket_count() == buckets);
  CHECK(s.count() == 2 * xs.size());
}

TEST_CASE("clear forgets the values and keeps the configuration", "[ddsketch]") {
  auto s = sketch_of(make_data(shape::mixed, 4, 1000), 0.02, 100);
  s.clear();
  CHECK(s.empty());
  CHECK(s == ddsketch(0.02, 100));
  CHECK(std::isnan(s.quantile(0.5)));
  s.add(3);
  CHECK(s.quantile(0.5) == 3);
}

TEST_CASE("relative accuracy and bucket limit are validated", "[ddsketch]") {
  for (double bad : {0.0, -0.01, 0.5, 0.7, 1e-7, std::numeric_limits<double>::quiet_NaN(),
                     std::numeric_limits<double>::infinity()}) {
    INFO("alpha " << bad);
    CHECK_FALSE(ddsketch::valid_config(bad, 2048));
    CHECK_THROWS_AS(ddsketch(bad), std::invalid_argument);
  }
  for (double good : {1e-6, 0.001, 0.01, 0.2, 0.4999}) {
    INFO("alpha " << good);
    CHECK(ddsketch::valid_config(good, 2048));
    CHECK(ddsketch(good).relative_accuracy() == good);
  }
  CHECK_FALSE(ddsketch::valid_config(0.01, 0));
  CHECK_THROWS_AS(ddsketch(0.01, 0), std::invalid_argument);
  CHECK_FALSE(ddsketch::valid_config(0.01, ddsketch::max_max_buckets + 1));
  CHECK(ddsketch::valid_config(0.01, 1));
  CHECK(ddsketch(0.01, 1).max_buckets() == 1);
}

TEST_CASE("a sketch survives serialisation, and equal sketches serialise equally",
          "[ddsketch]") {
  auto xs = make_data(shape::mixed, 12, 5000);
  // Integers: sums are exact whatever the order, so the whole state is order-free.
  for (auto& x : xs)
    x = std::round(x);
  auto a = sketch_of(xs, 0.02, 50);
  auto shuffled = xs;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64{1});
  auto b = sketch_of(shuffled, 0.02, 50);
  REQUIRE(a == b);

  std::vector<char> buf_a;
  std::vector<char> buf_b;
  caf::binary_serializer sink_a{nullptr, buf_a};
  caf::binary_serializer sink_b{nullptr, buf_b};
  REQUIRE(!sink_a(a));
  REQUIRE(!sink_b(b));
  CHECK(buf_a == buf_b);

  ddsketch loaded; // other accuracy and limit: both are part of the state
  caf::binary_deserializer source{nullptr, buf_a};
  REQUIRE(!source(loaded));
  CHECK(loaded == a);
  CHECK(loaded.consistent());
  CHECK(loaded.gamma() == a.gamma());
  for (auto q : quantiles)
    CHECK(loaded.quantile(q) == a.quantile(q));
  // The derived constants are live: further adds land in the same buckets.
  for (double x : {0.5, 1e9, -3.0}) {
    loaded.add(x);
    a.add(x);
  }
  CHECK(loaded == a);
}

TEST_CASE("loading bytes that no sketch produced leaves an empty default sketch",
          "[ddsketch]") {
  // The serialised layout: alpha, bucket limit, count, sum, min, max, zero count,
  // positive store (offset, counts), negative store (offset, counts).
  auto load = [](double alpha, uint64_t count, uint64_t zero_count,
                 std::vector<uint64_t> pos_counts) {
    std::vector<char> buf;
    caf::binary_serializer sink{nullptr, buf};
    auto err = sink(alpha, uint64_t{2048}, count, 0.0, 0.0, 0.0, zero_count, int32_t{7},
                    pos_counts, int32_t{0}, std::vector<uint64_t>{});
    REQUIRE(!err);
    ddsketch s{0.3, 10};
    caf::binary_deserializer source{nullptr, buf};
    REQUIRE(!source(s));
    return s;
  };
  // Consistent: three zeros and one value in positive bucket 7, alpha 2 %.
  auto ok = load(0.02, 4, 3, {1});
  CHECK(ok.consistent());
  CHECK(ok.relative_accuracy() == 0.02);
  CHECK(ok.count() == 4);
  CHECK(buckets_of(ok) == std::vector<bucket>{{0, 0, 3}, {1, 7, 1}});
  // Invalid accuracy, counts not adding up, a store with an empty end.
  CHECK(load(0.7, 4, 3, {1}) == ddsketch{});
  CHECK(load(0.02, 5, 3, {1}) == ddsketch{});
  CHECK(load(0.02, 4, 3, {1, 0}) == ddsketch{});

  // Truncated bytes of a real sketch: the deserialiser fails, the state is reset.
  auto a = sketch_of(make_data(shape::mixed, 13, 1000));
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  REQUIRE(!sink(a));
  buf.resize(buf.size() - 9);
  ddsketch b{0.3, 10};
  caf::binary_deserializer source{nullptr, buf};
  CHECK(source(b));
  CHECK(b == ddsketch{});
  CHECK(b.consistent());
}
