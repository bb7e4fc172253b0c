#include "series/series_state.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using namespace tether;
using tether::series::apply_outcome;
using tether::series::series_state;

namespace Catch {
template <>
struct StringMaker<apply_outcome> {
  static std::string convert(apply_outcome x) {
    switch (x) {
      case apply_outcome::applied:
        return "applied";
      case apply_outcome::applied_new_window:
        return "applied_new_window";
      case apply_outcome::late:
        return "late";
    }
    return "apply_outcome(" + std::to_string(static_cast<int>(x)) + ")";
  }
};
} // namespace Catch

namespace {

/// A clock inside the first default window, and a lateness that keeps every window
/// of the running-state tests open.
constexpr int64_t now = 1000;
constexpr int64_t lateness = 3'600'000;
constexpr double accuracy = 0.01;

constexpr uint64_t input_a = 0xa;
constexpr uint64_t input_b = 0xb;

wire::keyed_sample make(tether::kind k, double value, int64_t ts = 0,
                        counter_mode mode = counter_mode::delta) {
  wire::keyed_sample s;
  s.kind = k;
  s.mode = mode;
  s.value = value;
  s.timestamp_ms = ts;
  s.hash = 0x5e71e5;
  s.input_hash = s.hash;
  return s;
}

/// A running total reported by input series `input`.
wire::keyed_sample cumulative(double value, int64_t ts = 0, uint64_t input = input_a) {
  auto s = make(kind::counter, value, ts, counter_mode::cumulative);
  s.input_hash = input;
  return s;
}

series_state counter(uint32_t window_ms = 10000) {
  series_state st;
  st.kind = kind::counter;
  st.window_ms = window_ms;
  return st;
}

series_state of_kind(tether::kind k, uint32_t window_ms = 10000) {
  series_state st;
  st.kind = k;
  st.window_ms = window_ms;
  return st;
}

/// Applies `s` at a time when its window is open.
apply_outcome apply(series_state& st, const wire::keyed_sample& s) {
  return st.apply(s, now, lateness, accuracy);
}

const series::input_state* input_of(const series_state& st, uint64_t hash) {
  for (auto& in : st.inputs())
    if (in.hash == hash)
      return &in;
  return nullptr;
}

/// The parts of a series that applying a sample changes.
struct snapshot {
  double total, last, min, max, sum;
  uint64_t count;
  int64_t updated_ms;
  size_t open_windows;
  uint64_t open_count;
  double open_sum;
  std::vector<std::pair<uint64_t, double>> inputs;

  explicit snapshot(const series_state& st)
    : total(st.total),
      last(st.last),
      min(st.min),
      max(st.max),
      sum(st.sum),
      count(st.count),
      updated_ms(st.updated_ms),
      open_windows(st.open().size()),
      open_count(0),
      open_sum(0) {
    for (auto& w : st.open()) {
      open_count += w.count;
      open_sum += w.sum;
    }
    for (auto& in : st.inputs())
      inputs.emplace_back(in.hash, in.last);
  }

  bool operator==(const snapshot& o) const {
    return total == o.total && last == o.last && min == o.min && max == o.max
           && sum == o.sum && count == o.count && updated_ms == o.updated_ms
           && open_windows == o.open_windows && open_count == o.open_count
           && open_sum == o.open_sum && inputs == o.inputs;
  }
};

} // namespace

// -- running state -------------------------------------------------------------

TEST_CASE("delta counters add every value to the total", "[series_state]") {
  auto st = counter();
  apply(st, make(kind::counter, 2));
  apply(st, make(kind::counter, 3.5));
  apply(st, make(kind::counter, 0));
  CHECK(st.total == 5.5);
  CHECK(st.sum == 5.5);
  CHECK(st.count == 3);
  CHECK(st.last == 0);
  CHECK(st.min == 0);
  CHECK(st.max == 3.5);
  CHECK(st.inputs().empty()); // only cumulative inputs are tracked
}

TEST_CASE("cumulative counters: the first value is a baseline", "[series_state]") {
  auto st = counter();
  apply(st, cumulative(100, 5));
  CHECK(st.total == 0);
  CHECK(st.last == 0);
  CHECK(st.count == 1);
  REQUIRE(st.inputs().size() == 1);
  CHECK(st.inputs()[0].hash == input_a);
  CHECK(st.inputs()[0].last == 100);
  CHECK(st.inputs()[0].seen_ms == 5);
}

TEST_CASE("cumulative counters add the increase", "[series_state]") {
  auto st = counter();
  apply(st, cumulative(100));
  apply(st, cumulative(130));
  CHECK(st.total == 30);
  CHECK(st.last == 30);
  apply(st, cumulative(130)); // unchanged input: no increase
  CHECK(st.total == 30);
  CHECK(st.last == 0);
  apply(st, cumulative(145.5));
  CHECK(st.total == 45.5);
  CHECK(st.last == 15.5);
  CHECK(st.sum == 45.5);
  CHECK(st.count == 4);
  CHECK(st.min == 0);
  CHECK(st.max == 30);
  CHECK(st.inputs().size() == 1);
}

TEST_CASE("cumulative counters: a decrease is a reset adding the new value",
          "[series_state]") {
  auto st = counter();
  apply(st, cumulative(100));
  apply(st, cumulative(150)); // +50
  apply(st, cumulative(20));  // reset: +20
  CHECK(st.total == 70);
  CHECK(st.last == 20);
  REQUIRE(input_of(st, input_a) != nullptr);
  CHECK(input_of(st, input_a)->last == 20);
  apply(st, cumulative(25)); // +5 relative to the value after the reset
  CHECK(st.total == 75);
  apply(st, cumulative(0)); // reset to zero: +0
  CHECK(st.total == 75);
  apply(st, cumulative(7));
  CHECK(st.total == 82);
}

TEST_CASE("cumulative counters follow the example of the protocol document",
          "[series_state]") {
  // docs/protocol.md section 13: values 100, 130, 150, 40, 45 add 0, 30, 20, 40, 5.
  auto st = counter();
  for (double v : {100, 130, 150, 40, 45})
    apply(st, cumulative(v));
  CHECK(st.total == 95);
  CHECK(st.last == 5);
}

TEST_CASE("delta and cumulative samples mix on one counter", "[series_state]") {
  auto st = counter();
  apply(st, make(kind::counter, 5)); // delta
  apply(st, cumulative(1000));       // baseline of the cumulative input
  apply(st, make(kind::counter, 1)); // delta
  apply(st, cumulative(1010));       // +10
  CHECK(st.total == 16);
  CHECK(st.inputs().size() == 1);
}

TEST_CASE("cumulative inputs folded into one output are tracked apart",
          "[series_state]") {
  // Input a reports 100, 110, 3 (a reset); input b reports 5, 7. Each first report
  // is a baseline: 0 + 0 + 10 + 2 + 3.
  auto st = counter();
  apply(st, cumulative(100, 1, input_a));
  apply(st, cumulative(5, 2, input_b));
  CHECK(st.total == 0);
  apply(st, cumulative(110, 3, input_a));
  CHECK(st.total == 10);
  apply(st, cumulative(7, 4, input_b));
  CHECK(st.total == 12);
  apply(st, cumulative(3, 5, input_a));
  CHECK(st.total == 15);
  CHECK(st.count == 5);
  CHECK(st.last == 3);
  REQUIRE(st.inputs().size() == 2);
  REQUIRE(input_of(st, input_a) != nullptr);
  REQUIRE(input_of(st, input_b) != nullptr);
  CHECK(input_of(st, input_a)->last == 3);
  CHECK(input_of(st, input_a)->seen_ms == 5);
  CHECK(input_of(st, input_b)->last == 7);
  CHECK(input_of(st, input_b)->seen_ms == 4);
}

TEST_CASE("one input's reports never count against another's", "[series_state]") {
  // Had the inputs shared one baseline, b's 5 after a's 100 would read as a reset.
  auto st = counter();
  apply(st, cumulative(100, 1, input_a));
  apply(st, cumulative(5, 2, input_b));
  apply(st, cumulative(100, 3, input_a));
  apply(st, cumulative(5, 4, input_b));
  CHECK(st.total == 0);
}

TEST_CASE("forget_inputs drops quiet inputs without lowering the total",
          "[series_state]") {
  auto st = counter();
  apply(st, cumulative(100, 1000, input_a));
  apply(st, cumulative(5, 2000, input_b));
  apply(st, cumulative(150, 3000, input_a)); // +50
  apply(st, cumulative(9, 4000, input_b));   // +4
  REQUIRE(st.total == 54);

  CHECK(st.forget_inputs(3000) == 0); // a was seen at 3000: not older than the cutoff
  CHECK(st.inputs().size() == 2);
  CHECK(st.forget_inputs(3001) == 1);
  REQUIRE(st.inputs().size() == 1);
  CHECK(st.inputs()[0].hash == input_b);
  CHECK(st.total == 54);
  CHECK(st.sum == 54);
  CHECK(st.count == 4);

  // A returning input starts from a new baseline: its value is not an increase.
  apply(st, cumulative(170, 5000, input_a));
  CHECK(st.total == 54);
  apply(st, cumulative(171, 5001, input_a)); // +1
  CHECK(st.total == 55);
  CHECK(st.inputs().size() == 2);

  CHECK(st.forget_inputs(1'000'000) == 2);
  CHECK(st.inputs().empty());
  CHECK(st.total == 55);
}

TEST_CASE("an input's seen time is its newest timestamp", "[series_state]") {
  auto st = counter();
  apply(st, cumulative(1, 4000));
  apply(st, cumulative(2, 2000)); // out of order: the seen time stays at 4000
  REQUIRE(st.inputs().size() == 1);
  CHECK(st.inputs()[0].seen_ms == 4000);
  CHECK(st.forget_inputs(4000) == 0);
}

TEST_CASE("a counter's total never decreases over random cumulative input",
          "[series_state]") {
  std::mt19937 rng{7};
  std::uniform_real_distribution<double> step{0, 50};
  auto st = counter();
  double input = 0;
  double expected = 0;
  bool first = true;
  double previous_total = 0;
  for (int i = 0; i < 5000; ++i) {
    double prev_input = input;
    if (rng() % 10 == 0)
      input = step(rng); // reset
    else
      input += step(rng);
    if (!first)
      expected += input >= prev_input ? input - prev_input : input;
    first = false;
    apply(st, cumulative(input, i));
    REQUIRE(st.total >= previous_total);
    previous_total = st.total;
  }
  CHECK(st.total == Approx(expected).epsilon(1e-9));
  CHECK(st.count == 5000);
}

TEST_CASE("gauges track last, min, max, sum and count", "[series_state]") {
  auto st = of_kind(kind::gauge);
  apply(st, make(kind::gauge, 5));
  CHECK(st.min == 5);
  CHECK(st.max == 5);
  apply(st, make(kind::gauge, -2));
  apply(st, make(kind::gauge, 9));
  apply(st, make(kind::gauge, 3));
  CHECK(st.last == 3);
  CHECK(st.min == -2);
  CHECK(st.max == 9);
  CHECK(st.sum == 15);
  CHECK(st.count == 4);
  CHECK(st.total == 0); // totals are for counters
}

TEST_CASE("min and max start from the first sample, not from zero",
          "[series_state]") {
  auto pos = of_kind(kind::gauge);
  apply(pos, make(kind::gauge, 10));
  apply(pos, make(kind::gauge, 20));
  CHECK(pos.min == 10);

  auto neg = of_kind(kind::histogram);
  apply(neg, make(kind::histogram, -10));
  apply(neg, make(kind::histogram, -20));
  CHECK(neg.max == -10);
  CHECK(neg.min == -20);
}

TEST_CASE("a cumulative flag on a gauge sample is ignored", "[series_state]") {
  auto st = of_kind(kind::gauge);
  apply(st, make(kind::gauge, 100, 0, counter_mode::cumulative));
  apply(st, make(kind::gauge, 40, 0, counter_mode::cumulative));
  CHECK(st.last == 40);
  CHECK(st.sum == 140);
  CHECK(st.inputs().empty());
}

TEST_CASE("updated_ms is the newest timestamp applied", "[series_state]") {
  auto st = of_kind(kind::gauge);
  apply(st, make(kind::gauge, 1, 1000));
  CHECK(st.updated_ms == 1000);
  apply(st, make(kind::gauge, 2, 3000));
  CHECK(st.updated_ms == 3000);
  apply(st, make(kind::gauge, 3, 2000)); // out of order: applied, time kept
  CHECK(st.updated_ms == 3000);
  CHECK(st.last == 3);
  CHECK(st.count == 3);
}

TEST_CASE("fill copies the state into a view", "[series_state]") {
  auto st = counter(1000);
  apply(st, make(kind::counter, 4, 10));
  apply(st, make(kind::counter, 6, 20));
  series_view v;
  v.key = "k";
  v.slice = 9;
  st.fill(v);
  CHECK(v.found);
  CHECK(v.kind == kind::counter);
  CHECK(v.total == 10);
  CHECK(v.last == 6);
  CHECK(v.min == 4);
  CHECK(v.max == 6);
  CHECK(v.sum == 10);
  CHECK(v.count == 2);
  CHECK(v.updated_ms == 20);
  CHECK(v.key == "k"); // location fields are left alone
  CHECK(v.slice == 9);
  CHECK(v.window.end_ms == 0); // no window has closed yet

  st.close(0, {});
  st.fill(v);
  CHECK(v.window.start_ms == 0);
  CHECK(v.window.end_ms == 1000);
  CHECK(v.window.count == 2);
  CHECK(v.window.increase == 10);
  CHECK(v.window.total == 10);
}

// -- windows -------------------------------------------------------------------

TEST_CASE("windows are aligned to multiples of their length", "[series_state]") {
  auto st = of_kind(kind::gauge, 1000);
  CHECK(st.window_start(0) == 0);
  CHECK(st.window_start(999) == 0);
  CHECK(st.window_start(1000) == 1000);
  CHECK(st.window_start(1'700'000'000'123) == 1'700'000'000'000);
  CHECK(st.window_start(-1) == -1000);
  CHECK(st.window_start(-1000) == -1000);
  CHECK(st.window_start(-1001) == -2000);
}

TEST_CASE("the first sample of each window opens it", "[series_state]") {
  auto st = of_kind(kind::gauge, 1000);
  CHECK(apply(st, make(kind::gauge, 1, 100)) == apply_outcome::applied_new_window);
  CHECK(apply(st, make(kind::gauge, 2, 999)) == apply_outcome::applied);
  CHECK(apply(st, make(kind::gauge, 3, 1000)) == apply_outcome::applied_new_window);
  CHECK(apply(st, make(kind::gauge, 4, 500)) == apply_outcome::applied);
  CHECK(apply(st, make(kind::gauge, 5, 1500)) == apply_outcome::applied);
  REQUIRE(st.open().size() == 2);
  CHECK(st.open()[0].start == 0);
  CHECK(st.open()[0].count == 3);
  CHECK(st.open()[1].start == 1000);
  CHECK(st.open()[1].count == 2);
  CHECK(st.count == 5);

  // A window between two open ones keeps the open windows in ascending order.
  auto st2 = of_kind(kind::gauge, 1000);
  apply(st2, make(kind::gauge, 1, 2500));
  apply(st2, make(kind::gauge, 1, 500));
  CHECK(apply(st2, make(kind::gauge, 1, 1500)) == apply_outcome::applied_new_window);
  REQUIRE(st2.open().size() == 3);
  CHECK(st2.open()[0].start == 0);
  CHECK(st2.open()[1].start == 1000);
  CHECK(st2.open()[2].start == 2000);
}

TEST_CASE("closing a gauge window gives its aggregate", "[series_state]") {
  auto st = of_kind(kind::gauge, 1000);
  apply(st, make(kind::gauge, 5, 300));
  apply(st, make(kind::gauge, 9, 800));  // newest timestamp of the window
  apply(st, make(kind::gauge, 2, 100));  // arrives last, but is older
  apply(st, make(kind::gauge, 7, 1200)); // next window
  auto w = st.close(0, {0.5});
  CHECK(w.start_ms == 0);
  CHECK(w.end_ms == 1000);
  CHECK(w.count == 3);
  CHECK(w.sum == 16);
  CHECK(w.min == 2);
  CHECK(w.max == 9);
  CHECK(w.last == 9);
  CHECK(w.mean == Approx(16.0 / 3));
  CHECK(w.increase == 0); // counters only
  CHECK(w.total == 0);
  CHECK(w.rate == 0);
  CHECK(w.quantiles.empty()); // histograms only

  CHECK(st.closed_until == 1000);
  REQUIRE(st.open().size() == 1); // the next window stays open
  CHECK(st.open()[0].start == 1000);
  CHECK(st.last_window().end_ms == 1000);
  CHECK(st.last_window().sum == 16);
  // The running state is not reset by a close.
  CHECK(st.count == 4);
  CHECK(st.last == 7);

  auto w2 = st.close(1000, {});
  CHECK(w2.start_ms == 1000);
  CHECK(w2.end_ms == 2000);
  CHECK(w2.count == 1);
  CHECK(w2.last == 7);
  CHECK(w2.mean == 7);
  CHECK(st.open().empty());
  CHECK(st.closed_until == 2000);
  CHECK(st.last_window().start_ms == 1000);
}

TEST_CASE("a window's last value is the one with the newest timestamp",
          "[series_state]") {
  auto st = of_kind(kind::gauge, 1000);
  apply(st, make(kind::gauge, 1, 700));
  apply(st, make(kind::gauge, 2, 200));
  apply(st, make(kind::gauge, 3, 699));
  CHECK(st.close(0, {}).last == 1);

  // Equal timestamps: the one applied later wins.
  apply(st, make(kind::gauge, 4, 1500));
  apply(st, make(kind::gauge, 5, 1500));
  CHECK(st.close(1000, {}).last == 5);
}

TEST_CASE("closing a counter window gives its increase, total and rate",
          "[series_state]") {
  auto st = counter(2000);
  apply(st, make(kind::counter, 2, 100));
  apply(st, make(kind::counter, 3, 1900));
  apply(st, make(kind::counter, 7, 2100)); // next window
  auto w = st.close(0, {});
  CHECK(w.start_ms == 0);
  CHECK(w.end_ms == 2000);
  CHECK(w.count == 2);
  CHECK(w.increase == 5);
  CHECK(w.sum == 5);
  CHECK(w.total == 5);
  CHECK(w.rate == 2.5); // 5 per 2 seconds
  CHECK(w.min == 2);
  CHECK(w.max == 3);
  CHECK(w.mean == 2.5);
  CHECK(st.total == 12); // the running total includes the open window

  auto w2 = st.close(2000, {});
  CHECK(w2.increase == 7);
  CHECK(w2.total == 12);
  CHECK(w2.rate == 3.5);

  // A window without samples: nothing to emit.
  auto w3 = st.close(4000, {});
  CHECK(w3.end_ms == 0);
  CHECK(w3.count == 0);
  CHECK(st.last_window().start_ms == 2000); // still the latest emitted window
  CHECK(st.closed_until == 6000);
}

TEST_CASE("cumulative counter windows: the total never decreases across closes",
          "[series_state]") {
  auto st = counter(1000);
  apply(st, cumulative(100, 100));  // baseline
  apply(st, cumulative(130, 500));  // +30
  apply(st, cumulative(150, 1100)); // +20
  apply(st, cumulative(40, 1200));  // reset: +40
  apply(st, cumulative(45, 2100));  // +5
  auto w0 = st.close(0, {});
  auto w1 = st.close(1000, {});
  auto w2 = st.close(2000, {});
  CHECK(w0.increase == 30);
  CHECK(w1.increase == 60);
  CHECK(w2.increase == 5);
  CHECK(w0.total == 30);
  CHECK(w1.total == 90);
  CHECK(w2.total == 95);
  CHECK(w0.rate == 30);
  CHECK(w1.rate == 60);
  CHECK(w2.rate == 5);
  CHECK(w0.count == 2);
  CHECK(w0.min == 0); // the baseline adds nothing
  CHECK(w0.last == 30);
  CHECK(st.total == 95);
  CHECK(st.closed_total == 95);

  // An empty window leaves the total where it was.
  CHECK(st.close(3000, {}).end_ms == 0);
  apply(st, cumulative(45, 4500));
  auto w4 = st.close(4000, {});
  CHECK(w4.increase == 0);
  CHECK(w4.total == 95);
}

TEST_CASE("a sample for a closed window is late and changes nothing",
          "[series_state]") {
  auto st = counter(1000);
  apply(st, cumulative(100, 100, input_a));
  apply(st, cumulative(110, 200, input_a)); // +10
  apply(st, cumulative(120, 1100, input_a)); // +10, next window
  st.close(0, {});
  REQUIRE(st.closed_until == 1000);
  snapshot before{st};
  auto closed = st.last_window().total;

  // Inside the lateness, but its window has closed here.
  CHECK(st.apply(cumulative(500, 999, input_a), 1000, lateness, accuracy)
        == apply_outcome::late);
  CHECK(st.apply(make(kind::counter, 3, 0), 1000, lateness, accuracy)
        == apply_outcome::late);
  CHECK(snapshot{st} == before);
  CHECK(st.last_window().total == closed);

  // The late report did not become the input's baseline.
  apply(st, cumulative(125, 1500, input_a));
  CHECK(st.total == 25);
  CHECK(apply(st, make(kind::counter, 1, 1000)) == apply_outcome::applied);
}

TEST_CASE("a sample whose window ended lateness_ms or more ago is late",
          "[series_state]") {
  auto st = of_kind(kind::gauge, 1000);
  // Window [0, 1000) with 500 ms of lateness takes samples until now = 1499.
  CHECK(st.apply(make(kind::gauge, 1, 999), 1499, 500, accuracy)
        == apply_outcome::applied_new_window);
  snapshot before{st};
  CHECK(st.apply(make(kind::gauge, 2, 999), 1500, 500, accuracy) == apply_outcome::late);
  CHECK(st.apply(make(kind::gauge, 3, 0), 9000, 500, accuracy) == apply_outcome::late);
  CHECK(snapshot{st} == before);
  CHECK(st.last == 1);

  // A newer window is still open at that time, and lateness 0 closes at the end.
  CHECK(st.apply(make(kind::gauge, 4, 1000), 1500, 500, accuracy)
        == apply_outcome::applied_new_window);
  CHECK(st.apply(make(kind::gauge, 5, 2999), 3000, 0, accuracy) == apply_outcome::late);
  CHECK(st.apply(make(kind::gauge, 6, 2999), 2999, 0, accuracy)
        == apply_outcome::applied_new_window);
  CHECK(st.count == 3);
}

TEST_CASE("a closed empty window makes its samples late", "[series_state]") {
  auto st = of_kind(kind::gauge, 1000);
  st.close(5000, {});
  CHECK(st.closed_until == 6000);
  CHECK(apply(st, make(kind::gauge, 1, 5999)) == apply_outcome::late);
  CHECK(st.count == 0);
  CHECK(st.open().empty());
  CHECK(apply(st, make(kind::gauge, 1, 6000)) == apply_outcome::applied_new_window);
}

TEST_CASE("histogram window quantiles are within the sketch's relative error",
          "[series_state]") {
  std::mt19937_64 rng{42};
  std::lognormal_distribution<double> dist{0, 2};
  const std::vector<double> qs{0.5, 0.9, 0.99, 0.999};
  auto st = of_kind(kind::histogram, 10000);
  std::vector<double> values;
  for (int i = 0; i < 10000; ++i) {
    double v = dist(rng);
    if (i % 7 == 0)
      v = -v; // some negative values too
    values.push_back(v);
    apply(st, make(kind::histogram, v, i % 10000));
  }
  // The next window gets much larger values: they must not leak into this one.
  for (int i = 0; i < 100; ++i)
    apply(st, make(kind::histogram, 1e9 + i, 10000 + i));

  auto w = st.close(0, qs);
  std::sort(values.begin(), values.end());
  CHECK(w.count == 10000);
  CHECK(w.min == values.front());
  CHECK(w.max == values.back());
  double sum = 0;
  for (auto v : values)
    sum += v;
  CHECK(w.sum == Approx(sum).epsilon(1e-9));
  REQUIRE(w.quantiles.size() == qs.size());
  for (size_t i = 0; i < qs.size(); ++i) {
    auto [q, estimate] = w.quantiles[i];
    CHECK(q == qs[i]);
    auto exact = values[series::ddsketch::quantile_rank(q, values.size())];
    INFO("q = " << q << ": estimate " << estimate << ", exact " << exact);
    CHECK(std::fabs(estimate - exact) <= accuracy * std::fabs(exact));
  }

  auto next = st.close(10000, {0.5});
  REQUIRE(next.quantiles.size() == 1);
  CHECK(next.quantiles[0].second >= 1e9 * (1 - accuracy));
  CHECK(next.min == 1e9);
}

TEST_CASE("histogram windows honour the sketch accuracy they were opened with",
          "[series_state]") {
  auto st = of_kind(kind::histogram, 1000);
  st.apply(make(kind::histogram, 1, 0), now, lateness, 0.05);
  REQUIRE(st.open().size() == 1);
  REQUIRE(st.sketch(0) != nullptr);
  CHECK(st.sketch(0)->relative_accuracy() == 0.05);

  auto g = of_kind(kind::gauge, 1000);
  apply(g, make(kind::gauge, 1, 0));
  REQUIRE(g.open().size() == 1);
  CHECK(g.sketch(0) == nullptr); // gauges keep no sketch
}

TEST_CASE("a cumulative input quiet for the staleness interval returns as a baseline",
          "[series_state]") {
  auto st = counter();
  constexpr int64_t staleness = 1000;
  REQUIRE(st.apply(cumulative(100, 10), 10, lateness, accuracy, staleness)
          != apply_outcome::late);
  REQUIRE(st.apply(cumulative(110, 20), 20, lateness, accuracy, staleness)
          != apply_outcome::late);
  CHECK(st.total == 10);
  // Quiet from 20 to 1020: forgotten, so 130 is a new baseline and adds nothing.
  REQUIRE(st.apply(cumulative(130, 1020), 1020, lateness, accuracy, staleness)
          != apply_outcome::late);
  CHECK(st.total == 10);
  // Reporting again within the interval counts as usual.
  REQUIRE(st.apply(cumulative(135, 1500), 1500, lateness, accuracy, staleness)
          != apply_outcome::late);
  CHECK(st.total == 15);
}
