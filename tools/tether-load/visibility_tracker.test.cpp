#include "tether-load/visibility_tracker.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using namespace tether::tools::load;
using clock_type = visibility_tracker::clock;

namespace {

/// Tracks outputs 0 and 5 of ten unfolded series.
visibility_tracker make_tracker() {
  return visibility_tracker{output_map{sample_kind::counter, 10, series_shape{}, false},
                            {0, 5}};
}

} // namespace

TEST_CASE("visibility_tracker: slots and keys") {
  auto t = make_tracker();
  CHECK(t.size() == 2);
  CHECK(t.slot_of(0) == 0);
  CHECK(t.slot_of(5) == 1);
  CHECK(t.slot_of(3) == visibility_tracker::npos);
  CHECK(t.key(1) == "tether_load_total{series=\"5\"}");
}

TEST_CASE("visibility_tracker: an update is visible once the count reaches it") {
  auto t = make_tracker();
  auto t0 = clock_type::now();
  t.on_batch({0, 0, 5, 3}, t0);       // output 0: 2 samples, output 5: 1
  t.on_batch({0, 1, 2}, t0 + 10ms);   // output 0: 1 more (total 3)
  t.on_batch({1, 2}, t0 + 20ms);      // nothing tracked
  CHECK(t.pending(0));
  CHECK(t.pending(1));
  CHECK(t.pending_total() == 3);
  // Two samples of output 0 seen: the first batch's update only.
  CHECK(t.on_observed(0, 2, t0 + 15ms) == 1);
  CHECK(t.pending_total() == 2);
  auto h = t.latency();
  REQUIRE(h.count() == 1);
  CHECK(h.max() == 15'000'000);
  // One sample short of the second batch: nothing new.
  CHECK(t.on_observed(0, 2, t0 + 16ms) == 0);
  CHECK(t.latency().count() == 1);
  t.on_observed(0, 3, t0 + 18ms);
  t.on_observed(1, 1, t0 + 30ms);
  CHECK(t.pending_total() == 0);
  CHECK_FALSE(t.pending(0));
  h = t.latency();
  CHECK(h.count() == 3);
  CHECK(h.min() == 8'000'000);
  CHECK(h.max() == 30'000'000);
}

TEST_CASE("visibility_tracker: counts before the run are the baseline") {
  auto t = make_tracker();
  t.set_baseline(0, 1000);
  auto t0 = clock_type::now();
  t.on_batch({0}, t0);
  t.on_observed(0, 1000, t0 + 1ms); // only the old value
  CHECK(t.pending(0));
  t.on_observed(0, 999, t0 + 2ms); // below the baseline: nothing
  CHECK(t.pending(0));
  t.on_observed(0, 1001, t0 + 3ms);
  CHECK_FALSE(t.pending(0));
  CHECK(t.latency().max() == 3'000'000);
}

TEST_CASE("visibility_tracker: one observation can cover many updates") {
  auto t = make_tracker();
  auto t0 = clock_type::now();
  for (int i = 0; i < 10; ++i)
    t.on_batch({0, 0}, t0 + i * 1ms);
  t.on_observed(0, 20, t0 + 10ms);
  auto h = t.latency();
  CHECK(h.count() == 10);
  CHECK(h.min() == 1'000'000);
  CHECK(h.max() == 10'000'000);
}

TEST_CASE("visibility_tracker: counts handed over per slot, and the clock never goes back") {
  auto t = make_tracker();
  auto t0 = clock_type::now();
  t.on_sent({3, 0}, t0);
  CHECK(t.pending(0));
  CHECK_FALSE(t.pending(1));
  // An observation stamped before the send (clocks of different threads) counts as 0.
  t.on_observed(0, 3, t0 - 1ms);
  CHECK(t.latency().max() == 0);
  // Unknown slots are ignored.
  t.on_observed(7, 100, t0);
  t.set_baseline(7, 100);
  CHECK(t.latency().count() == 1);
}

TEST_CASE("visibility_tracker: folded outputs count every input feeding them") {
  // 100 series, 2 metrics, folded: ids with the same parity share an output.
  visibility_tracker t{output_map{sample_kind::counter, 100, series_shape{2, 0}, true}, {1}};
  auto t0 = clock_type::now();
  t.on_batch({1, 3, 5, 2, 4}, t0); // three samples for output 1
  t.on_observed(0, 2, t0 + 1ms);   // slot 0 is output 1: two of three
  CHECK(t.pending(0));
  t.on_observed(0, 3, t0 + 2ms);
  CHECK_FALSE(t.pending(0));
}

TEST_CASE("visibility_tracker: visible updates over time, overall and per output") {
  auto t = make_tracker();
  auto t0 = clock_type::now();
  t.start_timelines(t0);
  t.on_batch({0, 0, 5}, t0);        // output 0: 2 samples, output 5: 1
  t.on_batch({0, 5}, t0 + 10ms);    // one more each
  t.on_observed(0, 2, t0 + 20ms);   // output 0: first batch visible
  t.on_observed(1, 2, t0 + 30ms);   // output 5: both batches visible
  t.on_observed(0, 2, t0 + 40ms);   // nothing new: not an event
  t.on_observed(0, 3, t0 + 320ms);  // output 0: second batch
  t.finish_timelines(t0 + 400ms);
  CHECK(t.timeline().buckets() == std::vector<std::uint64_t>{3, 0, 0, 1, 0});
  auto overall = t.timeline().gaps();
  REQUIRE(overall.size() == 4); // 0-20, 20-30, 30-320, 320-400 (open)
  CHECK(overall[2].from_s == Approx(0.03));
  CHECK(overall[2].to_s == Approx(0.32));
  auto first = t.timeline(0).gaps();
  REQUIRE(first.size() == 3);   // 0-20, 20-320, 320-400
  CHECK(first[1].from_s == Approx(0.02));
  CHECK(first[1].to_s == Approx(0.32));
  auto second = t.timeline(1).gaps();
  REQUIRE(second.size() == 2);  // 0-30, 30-400 (open: no update after 30 ms)
  CHECK(second[1].open);
  CHECK(second[1].from_s == Approx(0.03));
}
