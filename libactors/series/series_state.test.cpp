#include "series/series_state.hpp"

#include <random>
#include <vector>

#include <catch2/catch.hpp>

using namespace tether;
using tether::series::series_state;

namespace {

wire::keyed_sample make(tether::kind k, double value, int64_t ts = 0,
                        counter_mode mode = counter_mode::delta) {
  wire::keyed_sample s;
  s.kind = k;
  s.mode = mode;
  s.value = value;
  s.timestamp_ms = ts;
  return s;
}

wire::keyed_sample cumulative(double value, int64_t ts = 0) {
  return make(kind::counter, value, ts, counter_mode::cumulative);
}

series_state counter() {
  series_state st;
  st.kind = kind::counter;
  return st;
}

} // namespace

TEST_CASE("delta counters add every value to the total", "[series_state]") {
  auto st = counter();
  st.apply(make(kind::counter, 2));
  st.apply(make(kind::counter, 3.5));
  st.apply(make(kind::counter, 0));
  CHECK(st.total == 5.5);
  CHECK(st.sum == 5.5);
  CHECK(st.count == 3);
  CHECK(st.last == 0);
  CHECK(st.min == 0);
  CHECK(st.max == 3.5);
}

TEST_CASE("cumulative counters: the first value is a baseline", "[series_state]") {
  auto st = counter();
  st.apply(cumulative(100));
  CHECK(st.total == 0);
  CHECK(st.last == 0);
  CHECK(st.count == 1);
  CHECK(st.has_input);
  CHECK(st.last_input == 100);
}

TEST_CASE("cumulative counters add the increase", "[series_state]") {
  auto st = counter();
  st.apply(cumulative(100));
  st.apply(cumulative(130));
  CHECK(st.total == 30);
  CHECK(st.last == 30);
  st.apply(cumulative(130)); // unchanged input: no increase
  CHECK(st.total == 30);
  CHECK(st.last == 0);
  st.apply(cumulative(145.5));
  CHECK(st.total == 45.5);
  CHECK(st.last == 15.5);
  CHECK(st.sum == 45.5);
  CHECK(st.count == 4);
  CHECK(st.min == 0);
  CHECK(st.max == 30);
}

TEST_CASE("cumulative counters: a decrease is a reset adding the new value",
          "[series_state]") {
  auto st = counter();
  st.apply(cumulative(100));
  st.apply(cumulative(150)); // +50
  st.apply(cumulative(20));  // reset: +20
  CHECK(st.total == 70);
  CHECK(st.last == 20);
  CHECK(st.last_input == 20);
  st.apply(cumulative(25)); // +5 relative to the value after the reset
  CHECK(st.total == 75);
  st.apply(cumulative(0)); // reset to zero: +0
  CHECK(st.total == 75);
  st.apply(cumulative(7));
  CHECK(st.total == 82);
}

TEST_CASE("cumulative counters follow the example of the protocol document",
          "[series_state]") {
  // docs/protocol.md section 13: values 100, 130, 150, 40, 45 add 0, 30, 20, 40, 5.
  auto st = counter();
  for (double v : {100, 130, 150, 40, 45})
    st.apply(cumulative(v));
  CHECK(st.total == 95);
  CHECK(st.last == 5);
}

TEST_CASE("delta and cumulative samples mix on one counter", "[series_state]") {
  auto st = counter();
  st.apply(make(kind::counter, 5)); // delta
  st.apply(cumulative(1000));       // baseline of the cumulative input
  st.apply(make(kind::counter, 1)); // delta
  st.apply(cumulative(1010));       // +10
  CHECK(st.total == 16);
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
    st.apply(cumulative(input, i));
    REQUIRE(st.total >= previous_total);
    previous_total = st.total;
  }
  CHECK(st.total == Approx(expected).epsilon(1e-9));
  CHECK(st.count == 5000);
}

TEST_CASE("gauges track last, min, max, sum and count", "[series_state]") {
  series_state st;
  st.kind = kind::gauge;
  st.apply(make(kind::gauge, 5));
  CHECK(st.min == 5);
  CHECK(st.max == 5);
  st.apply(make(kind::gauge, -2));
  st.apply(make(kind::gauge, 9));
  st.apply(make(kind::gauge, 3));
  CHECK(st.last == 3);
  CHECK(st.min == -2);
  CHECK(st.max == 9);
  CHECK(st.sum == 15);
  CHECK(st.count == 4);
  CHECK(st.total == 0); // totals are for counters
}

TEST_CASE("min and max start from the first sample, not from zero",
          "[series_state]") {
  series_state pos;
  pos.kind = kind::gauge;
  pos.apply(make(kind::gauge, 10));
  pos.apply(make(kind::gauge, 20));
  CHECK(pos.min == 10);

  series_state neg;
  neg.kind = kind::histogram;
  neg.apply(make(kind::histogram, -10));
  neg.apply(make(kind::histogram, -20));
  CHECK(neg.max == -10);
  CHECK(neg.min == -20);
}

TEST_CASE("a cumulative flag on a gauge sample is ignored", "[series_state]") {
  series_state st;
  st.kind = kind::gauge;
  st.apply(make(kind::gauge, 100, 0, counter_mode::cumulative));
  st.apply(make(kind::gauge, 40, 0, counter_mode::cumulative));
  CHECK(st.last == 40);
  CHECK(st.sum == 140);
  CHECK_FALSE(st.has_input);
}

TEST_CASE("updated_ms is the newest timestamp applied", "[series_state]") {
  series_state st;
  st.kind = kind::gauge;
  st.apply(make(kind::gauge, 1, 1000));
  CHECK(st.updated_ms == 1000);
  st.apply(make(kind::gauge, 2, 3000));
  CHECK(st.updated_ms == 3000);
  st.apply(make(kind::gauge, 3, 2000)); // late sample: applied, time kept
  CHECK(st.updated_ms == 3000);
  CHECK(st.last == 3);
  CHECK(st.count == 3);
}

TEST_CASE("fill copies the state into a view", "[series_state]") {
  auto st = counter();
  st.apply(make(kind::counter, 4, 10));
  st.apply(make(kind::counter, 6, 20));
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
}
