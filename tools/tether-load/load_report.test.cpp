#include "tether-load/load_report.hpp"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

using namespace tether::tools::load;

namespace {

load_totals sample_totals() {
  load_totals t;
  t.counters.connections_ok = 4;
  t.counters.batches_sent = 100;
  t.counters.batches_acked = 100;
  t.counters.samples_sent = 100'000;
  t.counters.samples_acked = 100'000;
  t.counters.samples_accepted = 100'000;
  t.elapsed_seconds = 2.0;
  t.node = "tether-0";
  for (std::uint64_t i = 1; i <= 100; ++i)
    t.latency.record(i * 100'000); // 0.1 ms .. 10 ms
  return t;
}

} // namespace

TEST_CASE("load_counters: += adds every field") {
  load_counters a;
  a.connections_ok = 1;
  a.batches_sent = 2;
  a.errors = 3;
  load_counters b = a;
  b.duplicates = 5;
  b.batches_unacked = 1;
  b.batches_late = 7;
  a += b;
  CHECK(a.connections_ok == 2);
  CHECK(a.batches_sent == 4);
  CHECK(a.errors == 6);
  CHECK(a.duplicates == 5);
  CHECK(a.batches_unacked == 1);
  CHECK(a.batches_late == 7);
}

TEST_CASE("run_succeeded: needs all connections, all acks and no errors") {
  load_options opts;
  auto t = sample_totals();
  CHECK(run_succeeded(opts, t));
  auto missing_connection = t;
  missing_connection.counters.connections_ok = 3;
  CHECK_FALSE(run_succeeded(opts, missing_connection));
  auto error = t;
  error.counters.errors = 1;
  CHECK_FALSE(run_succeeded(opts, error));
  auto unacked = t;
  unacked.counters.batches_acked = 99;
  unacked.counters.batches_unacked = 1;
  CHECK_FALSE(run_succeeded(opts, unacked));
  auto failed = t;
  failed.counters.batches_acked = 99;
  failed.counters.batches_failed = 1;
  CHECK_FALSE(run_succeeded(opts, failed));
  auto duplicates = t;
  duplicates.counters.duplicates = 3;
  CHECK(run_succeeded(opts, duplicates));
}

TEST_CASE("render_report_text: throughput and latency quantiles") {
  load_options opts;
  auto text = render_report_text(opts, sample_totals());
  CHECK(text.find("server          127.0.0.1:7480 (node tether-0)\n") != std::string::npos);
  CHECK(text.find("throughput      50000 samples/s, 50.0 batches/s\n") != std::string::npos);
  // Quantiles are exact to the histogram's precision; max is exact.
  CHECK(text.find("ack latency ms  p50 5.0") != std::string::npos);
  CHECK(text.find("  p90 8.9") != std::string::npos);
  CHECK(text.find("  max 10.000\n") != std::string::npos);
  CHECK(text.find("result          ok\n") != std::string::npos);
}

TEST_CASE("render_report_text: an in-flight limit lowered by the node is shown") {
  load_options opts;
  auto t = sample_totals();
  t.inflight_lowered_to = 2;
  auto text = render_report_text(opts, t);
  CHECK(text.find("batch           1000 samples, 8 (lowered to 2 by the node) in flight per "
                  "connection\n")
        != std::string::npos);
  auto doc = boost::json::parse(render_report_json(opts, t));
  CHECK(doc.as_object().at("inflight").to_number<int>() == 2);
}

TEST_CASE("render_report: metric names and groups are shown when set") {
  load_options opts;
  CHECK(render_report_text(opts, sample_totals()).find("series          10000 counters, uniform\n")
        != std::string::npos);
  opts.series = 1'000'000;
  opts.metrics = 100;
  opts.groups = 1;
  CHECK(render_report_text(opts, sample_totals())
          .find("series          1000000 counters, 100 metric names, 1 group, uniform\n")
        != std::string::npos);
  auto doc = boost::json::parse(render_report_json(opts, sample_totals()));
  CHECK(doc.as_object().at("metrics").to_number<std::uint32_t>() == 100);
  CHECK(doc.as_object().at("groups").to_number<std::uint64_t>() == 1);
  CHECK(doc.as_object().at("keys").as_string() == "uniform");
}

TEST_CASE("render_report: the key distribution with its exponent and seed") {
  load_options opts;
  opts.keys = key_distribution::zipf;
  opts.zipf_s = 1.2;
  opts.seed = 7;
  CHECK(render_report_text(opts, sample_totals())
          .find("series          10000 counters, zipf s=1.20 seed 7\n")
        != std::string::npos);
  auto doc = boost::json::parse(render_report_json(opts, sample_totals())).as_object();
  CHECK(doc.at("keys").as_string() == "zipf");
  CHECK(doc.at("zipf_s").as_double() == 1.2);
  CHECK(doc.at("seed").to_number<std::uint64_t>() == 7);
}

TEST_CASE("render_report_json: one object with the same numbers") {
  load_options opts;
  auto text = render_report_json(opts, sample_totals());
  REQUIRE(text.back() == '\n');
  REQUIRE(text.find('\n') == text.size() - 1);
  auto doc = boost::json::parse(text);
  const auto& obj = doc.as_object();
  CHECK(obj.at("connections").to_number<int>() == 4);
  CHECK(obj.at("batch").to_number<int>() == 1000);
  CHECK(obj.at("samples_acked").to_number<std::uint64_t>() == 100'000);
  CHECK(obj.at("throughput_samples_per_s").to_number<double>() == Approx(50'000.0));
  CHECK(obj.at("throughput_batches_per_s").to_number<double>() == Approx(50.0));
  const auto& latency = obj.at("latency_ms").as_object();
  CHECK(latency.at("p50").to_number<double>() == Approx(5.0).epsilon(0.01));
  CHECK(latency.at("p99").to_number<double>() == Approx(9.9).epsilon(0.01));
  CHECK(latency.at("max").to_number<double>() == Approx(10.0));
  CHECK(obj.at("errors").to_number<int>() == 0);
  CHECK(obj.at("duplicates").to_number<int>() == 0);
  CHECK(obj.at("ok").as_bool());
  CHECK(obj.at("kind").as_string() == "counter");
  // Closed loop: no target, nothing late; the achieved rate is still reported.
  CHECK(obj.at("target_rate").to_number<std::uint64_t>() == 0);
  CHECK(obj.at("late_batches").to_number<std::uint64_t>() == 0);
  CHECK(obj.at("achieved_rate").to_number<double>() == Approx(0.0));
}

TEST_CASE("render_report: open loop shows target and achieved rate and late batches") {
  load_options opts;
  opts.rate = 60'000;
  auto t = sample_totals();
  t.send_seconds = 1.6; // 100000 samples sent in 1.6 s
  t.counters.batches_late = 3;
  auto text = render_report_text(opts, t);
  CHECK(text.find("rate            open loop: target 60000 samples/s, achieved 62500 "
                  "samples/s sent\n")
        != std::string::npos);
  CHECK(text.find("late batches    3 of 100 sent more than 1 ms after their scheduled time\n")
        != std::string::npos);
  auto doc = boost::json::parse(render_report_json(opts, t));
  const auto& obj = doc.as_object();
  CHECK(obj.at("target_rate").to_number<std::uint64_t>() == 60'000);
  CHECK(obj.at("achieved_rate").to_number<double>() == Approx(62'500.0));
  CHECK(obj.at("late_batches").to_number<std::uint64_t>() == 3);
  CHECK(obj.at("ok").as_bool()); // late batches are reported, not failures
  // Closed loop keeps the text report as it was.
  CHECK(render_report_text(load_options{}, t).find("late batches") == std::string::npos);
}

TEST_CASE("render_report: an empty run reports no latency and no throughput") {
  load_options opts;
  load_totals empty;
  auto text = render_report_text(opts, empty);
  CHECK(text.find("ack latency ms  -\n") != std::string::npos);
  CHECK(text.find("throughput      0 samples/s, 0.0 batches/s\n") != std::string::npos);
  CHECK(text.find("result          FAILED\n") != std::string::npos);
  auto doc = boost::json::parse(render_report_json(opts, empty));
  CHECK_FALSE(doc.as_object().at("ok").as_bool());
}

TEST_CASE("render_report: several servers are listed") {
  load_options opts;
  using tether::tools::host_port;
  opts.servers = {host_port{"127.0.0.1", 7481}, host_port{"127.0.0.1", 7482}};
  opts.server = opts.servers.front();
  CHECK(render_report_text(opts, sample_totals())
          .find("server          127.0.0.1:7481,127.0.0.1:7482 (node tether-0)\n")
        != std::string::npos);
  auto doc = boost::json::parse(render_report_json(opts, sample_totals())).as_object();
  CHECK(doc.at("server").as_string() == "127.0.0.1:7481,127.0.0.1:7482");
}

TEST_CASE("format_quantiles: five quantiles in ms, or a dash") {
  tether::tools::latency_histogram h;
  CHECK(format_quantiles(h) == "-");
  h.record(2'000'000);
  CHECK(format_quantiles(h) == "p50 2.000  p90 2.000  p99 2.000  p99.9 2.000  max 2.000");
}

TEST_CASE("format_progress and format_ms") {
  CHECK(format_ms(1'234'567) == "1.235");
  CHECK(format_ms(0) == "0.000");
  auto line = format_progress(3.04, 1'234'567.4, 3'700'000, 2, 12);
  CHECK(line == "[    3.0s]      1234567 samples/s         3700000 acked       2 errors     12 in flight");
}

TEST_CASE("render_report: write-to-visible quantiles and the reader's delay") {
  load_options opts;
  auto t = sample_totals();
  CHECK(render_report_text(opts, t).find("visible") == std::string::npos);
  t.visible_keys = 8;
  for (std::uint64_t i = 1; i <= 1000; ++i)
    t.visible.record(i * 10'000); // 0.01 ms .. 10 ms
  t.reader_rtt.record(200'000);
  auto text = render_report_text(opts, t);
  // The same format as the ack latency line, from the visible histogram.
  CHECK(text.find("visible ms      " + format_quantiles(t.visible) + "\n") != std::string::npos);
  CHECK(format_quantiles(t.visible).find("max 10.000") != std::string::npos);
  CHECK(text.find("visibility      8 outputs, 1000 updates visible, 0 never; query round trip "
                  "p50 0.200 p99 0.200 ms, poll 1 ms\n")
        != std::string::npos);
  CHECK(run_succeeded(opts, t));
  auto doc = boost::json::parse(render_report_json(opts, t)).as_object();
  CHECK(doc.at("system").as_string() == "tether");
  CHECK(doc.at("visible_keys").to_number<int>() == 8);
  CHECK(doc.at("visible_latency_ms").as_object().at("count").to_number<int>() == 1000);
  CHECK(doc.at("visible_latency_ms").as_object().at("max").as_double() == 10.0);
  CHECK(doc.at("visible_latency_ms").as_object().at("p50").as_double() == Approx(5.0).epsilon(0.01));
  CHECK(doc.at("visible_latency_ms").as_object().at("p99").as_double() == Approx(9.9).epsilon(0.01));
  CHECK(doc.at("reader_rtt_ms").as_object().at("p50").as_double() == 0.2);
  // The spectrum: [q, ms] pairs, ascending in both.
  const auto& spectrum = doc.at("visible_spectrum_ms").as_array();
  REQUIRE(spectrum.size() == 9);
  CHECK(spectrum[0].as_array()[0].as_double() == 0.5);
  CHECK(spectrum[8].as_array()[0].as_double() == 0.9999);
  for (std::size_t i = 1; i < spectrum.size(); ++i)
    CHECK(spectrum[i].as_array()[1].as_double() >= spectrum[i - 1].as_array()[1].as_double());
  CHECK(spectrum[4].as_array()[1].as_double() == Approx(9.9).epsilon(0.01));
  CHECK(doc.at("latency_spectrum_ms").as_array().size() == 9);
  // Updates that never became visible, or outputs never found, fail the run.
  t.visible_unseen = 3;
  CHECK_FALSE(run_succeeded(opts, t));
  CHECK(render_report_text(opts, t).find("1000 updates visible, 3 never") != std::string::npos);
  t.visible_unseen = 0;
  t.visible_missing = 2;
  CHECK_FALSE(run_succeeded(opts, t));
  CHECK(render_report_text(opts, t).find("2 outputs not found") != std::string::npos);
}

TEST_CASE("render_report: retries, reconnects, timelines and the longest gaps") {
  load_options opts;
  opts.visible_keys = 2;
  auto t = sample_totals();
  t.visible_keys = 2;
  t.counters.retries = 12;
  t.counters.reconnects = 1;
  t.start_unix_ms = 1'700'000'000'123;
  t.acked.buckets = {1000, 0, 0, 3000};
  t.acked.gaps = {{0.05, 0.1, false}, {0.1, 0.35, false}};
  t.visible_over_time.buckets = {4, 0, 2};
  t.visible_over_time.gaps = {{0.12, 0.31, false}, {1.0, 1.5, true}};
  auto text = render_report_text(opts, t);
  CHECK_THAT(text, Catch::Contains("12 batches sent again, 1 reconnects"));
  CHECK_THAT(text, Catch::Contains("longest ack gap 250.0 ms (0.100 s to 0.350 s)"));
  CHECK_THAT(text, Catch::Contains("longest visible gap 500.0 ms (1.000 s to 1.500 s, until the end)"));
  auto doc = boost::json::parse(render_report_json(opts, t)).as_object();
  CHECK(doc.at("retries").to_number<std::uint64_t>() == 12);
  CHECK(doc.at("reconnects").to_number<std::uint64_t>() == 1);
  CHECK(doc.at("start_unix_ms").as_int64() == 1'700'000'000'123);
  const auto& tl = doc.at("timeline").as_object();
  CHECK(tl.at("bucket_ms").to_number<std::uint64_t>() == 100);
  CHECK(tl.at("acked_samples").as_array().size() == 4);
  CHECK(tl.at("acked_samples").as_array()[3].to_number<std::uint64_t>() == 3000);
  CHECK(tl.at("visible_updates").as_array().size() == 3);
  const auto& gaps = doc.at("ack_gaps").as_array();
  REQUIRE(gaps.size() == 2);
  CHECK(gaps[1].as_object().at("from_s").as_double() == Approx(0.1));
  CHECK(gaps[1].as_object().at("to_s").as_double() == Approx(0.35));
  CHECK_FALSE(gaps[1].as_object().at("open").as_bool());
  CHECK(doc.at("visible_gaps").as_array()[1].as_object().at("open").as_bool());
}

TEST_CASE("render_report: no retry line and no gaps in a quiet run") {
  load_options opts;
  auto text = render_report_text(opts, sample_totals());
  CHECK_THAT(text, !Catch::Contains("retries"));
  CHECK_THAT(text, !Catch::Contains("longest ack gap"));
  auto doc = boost::json::parse(render_report_json(opts, sample_totals())).as_object();
  CHECK(doc.at("ack_gaps").as_array().empty());
  CHECK(doc.at("retries").to_number<std::uint64_t>() == 0);
}
