#include "tether-load/nats/baseline_aggregator.hpp"

#include "tether-load/batch_builder.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <string>

using namespace tether::tools;
using nats::aggregator_config;
using nats::baseline_aggregator;

namespace {

/// 2 rules folding tether_load_<k>_total over the series label, 10 s windows.
aggregator_config folding_config() {
  std::string error;
  auto rules = tether::rules::rule_set::parse(
    R"({"rules": [
      {"name": "fold_0", "match": "tether_load_0_total", "without": ["series"], "window_ms": 10000},
      {"name": "fold_1", "match": "tether_load_1_total", "without": ["series"], "window_ms": 10000}
    ]})",
    tether::rules::rule_defaults{}, error);
  REQUIRE(rules);
  aggregator_config cfg;
  cfg.rules = rules;
  return cfg;
}

std::uint64_t count_of(baseline_aggregator& agg, const std::string& key) {
  const auto* st = agg.find(key);
  return st == nullptr ? 0 : nats::running_count(*st);
}

/// A write frame with one gauge sample of `value` at `timestamp_ms`.
std::string gauge_write(std::uint64_t sequence, double value, std::int64_t timestamp_ms) {
  tether::v1::ClientFrame frame;
  auto* w = frame.mutable_write();
  w->set_sequence(sequence);
  auto* s = w->add_samples();
  s->set_name("room_temp");
  s->set_kind(tether::v1::GAUGE);
  s->set_value(value);
  s->set_timestamp_ms(timestamp_ms);
  return frame.SerializeAsString();
}

constexpr std::int64_t t0 = 1'700'000'000'000; // a multiple of 10 s

} // namespace

TEST_CASE("baseline_aggregator: tether-load batches fold under the rules into the same totals") {
  baseline_aggregator agg{folding_config()};
  // 100 series over 2 metrics and 5 groups: 10 outputs, each fed by 10 ids.
  load::batch_builder builder{load::sample_kind::counter, 100, load::series_cycle{0, 1, 100},
                              load::series_shape{2, 5}};
  for (std::uint64_t seq = 1; seq <= 3; ++seq) {
    auto bytes = builder.next(seq, 100);
    auto out = agg.apply("p-0", bytes.data(), bytes.size(), t0 + 1000, t0 + 1000);
    CHECK(out.error.empty());
    CHECK(out.applied == 100);
    CHECK_FALSE(out.duplicate);
  }
  CHECK(agg.series_count() == 10);
  // 3 batches of every id once: 30 samples per output.
  CHECK(count_of(agg, "tether_load_0_total{group=\"0\"}") == 30);
  CHECK(count_of(agg, "tether_load_1_total{group=\"4\"}") == 30);
  // The input keys are not series of their own.
  CHECK(agg.find("tether_load_0_total{group=\"0\",series=\"0\"}") == nullptr);
}

TEST_CASE("baseline_aggregator: a redelivered (producer, sequence) changes nothing") {
  baseline_aggregator agg{aggregator_config{}};
  load::batch_builder builder{load::sample_kind::counter, 50, load::series_cycle{0, 1, 50}};
  auto bytes = std::string{builder.next(7, 50)};
  auto first = agg.apply("p-0", bytes.data(), bytes.size(), t0, t0);
  CHECK(first.applied == 50);
  auto again = agg.apply("p-0", bytes.data(), bytes.size(), t0 + 1, t0 + 1);
  CHECK(again.applied == 0);
  CHECK(again.duplicate);
  CHECK(again.error.empty());
  CHECK(count_of(agg, "tether_load_total{series=\"3\"}") == 1);
  // Another producer's sequence 7 is another write.
  auto other = agg.apply("p-1", bytes.data(), bytes.size(), t0 + 2, t0 + 2);
  CHECK(other.applied == 50);
  CHECK(count_of(agg, "tether_load_total{series=\"3\"}") == 2);
}

TEST_CASE("baseline_aggregator: windows close at end plus lateness, late samples drop") {
  aggregator_config cfg;
  cfg.lateness_ms = 5000;
  baseline_aggregator agg{cfg};
  auto a = gauge_write(1, 20.0, t0 + 1000);
  auto b = gauge_write(2, 22.0, t0 + 9000);
  CHECK(agg.apply("p", a.data(), a.size(), t0 + 1000, t0 + 1000).applied == 1);
  CHECK(agg.apply("p", b.data(), b.size(), t0 + 9000, t0 + 9000).applied == 1);
  CHECK(agg.close_due(t0 + 14'999) == 0);
  CHECK(agg.close_due(t0 + 15'000) == 1);
  const auto* st = agg.find("room_temp");
  REQUIRE(st != nullptr);
  CHECK(st->last_closed.count == 2);
  CHECK(st->last_closed.sum == 42.0);
  CHECK(st->count == 2);
  // A sample for the closed window is late: acknowledged, not applied.
  auto late = gauge_write(3, 99.0, t0 + 5000);
  auto out = agg.apply("p", late.data(), late.size(), t0 + 15'001, t0 + 15'001);
  CHECK(out.applied == 0);
  CHECK(out.late == 1);
  CHECK(agg.find("room_temp")->count == 2);
  // apply() closes due windows first, as a shard does: a sample of the next window
  // arriving after that window's close is late too.
  auto next = gauge_write(4, 1.0, t0 + 10'000);
  CHECK(agg.apply("p", next.data(), next.size(), t0 + 25'000, t0 + 25'000).late == 1);
}

TEST_CASE("baseline_aggregator: invalid batches are refused whole, as a node refuses them") {
  baseline_aggregator agg{aggregator_config{}};
  tether::v1::ClientFrame frame;
  auto* w = frame.mutable_write();
  w->set_sequence(1);
  auto* good = w->add_samples();
  good->set_name("x_total");
  good->set_kind(tether::v1::COUNTER);
  good->set_value(1);
  auto* bad = w->add_samples();
  bad->set_name("y_total");
  bad->set_kind(tether::v1::COUNTER);
  bad->set_value(std::nan(""));
  auto bytes = frame.SerializeAsString();
  auto out = agg.apply("p", bytes.data(), bytes.size(), t0, t0);
  CHECK(out.error.find("NON_FINITE_VALUE") != std::string::npos);
  CHECK(out.applied == 0);
  CHECK(agg.find("x_total") == nullptr);
  std::string junk = "\xff\xff\xff";
  CHECK_FALSE(agg.apply("p", junk.data(), junk.size(), t0, t0).error.empty());
}

TEST_CASE("baseline_aggregator: running_count reads counter totals and gauge counts") {
  baseline_aggregator agg{aggregator_config{}};
  load::batch_builder gauges{load::sample_kind::gauge, 10, load::series_cycle{0, 1, 5}};
  auto bytes = gauges.next(1, 10);
  agg.apply("p", bytes.data(), bytes.size(), t0, t0);
  CHECK(count_of(agg, "tether_load_value{series=\"4\"}") == 2);
}

TEST_CASE("baseline_aggregator: timestamp 0 is the receive time, lateness the applier's clock") {
  baseline_aggregator agg{aggregator_config{}};
  // Received (stored by the broker) at t0 + 1 s: window [t0, t0 + 10 s).
  auto on_time = gauge_write(1, 5.0, 0);
  auto out = agg.apply("p", on_time.data(), on_time.size(), t0 + 1000, t0 + 2000);
  CHECK(out.applied == 1);
  CHECK(agg.find("room_temp")->updated_ms == t0 + 1000);
  // Received at t0 + 2 s but applied 14 s later, after the window's close at t0 + 15 s:
  // a consumer this far behind loses the sample, as a node would.
  auto lagging = gauge_write(2, 6.0, 0);
  out = agg.apply("p", lagging.data(), lagging.size(), t0 + 2000, t0 + 16'000);
  CHECK(out.applied == 0);
  CHECK(out.late == 1);
}
