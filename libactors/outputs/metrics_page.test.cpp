#include "outputs/metrics_page.hpp"

#include <catch2/catch.hpp>

#include "prometheus/remote_write.hpp"
#include "rules/rule_set.hpp"

using namespace tether;

namespace {

series_view counter_view() {
  series_view v;
  v.key = "http_requests_total{code=\"200\",service=\"api\"}";
  v.kind = kind::counter;
  v.found = true;
  v.window.start_ms = 10000;
  v.window.end_ms = 20000;
  v.window.count = 4;
  v.window.increase = 30;
  v.window.sum = 30;
  v.window.total = 130;
  v.window.rate = 3;
  return v;
}

series_view gauge_view() {
  series_view v;
  v.key = "temp{room=\"lab\"}";
  v.kind = kind::gauge;
  v.window.end_ms = 20000;
  v.window.count = 2;
  v.window.last = 21.5;
  v.window.min = 20;
  v.window.max = 21.5;
  v.window.sum = 41.5;
  v.window.mean = 20.75;
  return v;
}

series_view histogram_view() {
  series_view v;
  v.key = "latency_seconds";
  v.kind = kind::histogram;
  v.window.end_ms = 20000;
  v.window.count = 10;
  v.window.sum = 2.5;
  v.window.min = 0.1;
  v.window.max = 0.9;
  v.window.quantiles = {{0.5, 0.2}, {0.99, 0.9}};
  return v;
}

bool has_line(const std::string& page, const std::string& line) {
  return page.find("\n" + line + "\n") != std::string::npos
         || page.rfind(line + "\n", 0) == 0;
}

} // namespace

TEST_CASE("the metrics page maps every kind of window", "[metrics_page]") {
  std::string page;
  std::string error;
  outputs::node_metrics me;
  me.node = "tether-0";
  me.samples_applied = 7;
  me.batches_rejected = {{"NON_FINITE_VALUE", 2}};
  REQUIRE(outputs::render_metrics({counter_view(), gauge_view(), histogram_view()}, me,
                                  nullptr, page, error));
  CHECK(has_line(page, "# TYPE http_requests_total counter"));
  CHECK(has_line(page, "http_requests_total{code=\"200\",service=\"api\"} 130"));
  CHECK(has_line(page, "http_requests_rate_over_window{code=\"200\",service=\"api\"} 3"));
  CHECK(has_line(page, "temp{room=\"lab\"} 21.5"));
  CHECK(has_line(page, "temp_avg_over_window{room=\"lab\"} 20.75"));
  CHECK(has_line(page, "# TYPE latency_seconds summary"));
  CHECK(has_line(page, "latency_seconds{quantile=\"0.99\"} 0.9"));
  CHECK(has_line(page, "latency_seconds_count 10"));
  CHECK(has_line(page, "tether_samples_applied_total{node=\"tether-0\"} 7"));
  CHECK(has_line(page, "tether_batches_rejected_total{node=\"tether-0\",reason=\"NON_FINITE_VALUE\"} 2"));
}

TEST_CASE("a rule's outputs select what is exported", "[metrics_page]") {
  std::string error;
  auto rules = rules::rule_set::parse(R"({"rules": [
    {"name": "r", "match": "http_requests_total", "outputs": ["rate", "increase"]},
    {"name": "g", "match": "temp", "outputs": ["max"]}]})", {}, error);
  REQUIRE(rules);
  auto c = counter_view();
  c.rule = 1;
  auto g = gauge_view();
  g.rule = 2;
  std::string page;
  REQUIRE(outputs::render_metrics({c, g}, outputs::node_metrics{}, rules.get(), page,
                                  error));
  CHECK_FALSE(has_line(page, "http_requests_total{code=\"200\",service=\"api\"} 130"));
  CHECK(has_line(page, "http_requests_rate_over_window{code=\"200\",service=\"api\"} 3"));
  CHECK(has_line(page, "http_requests_increase_over_window{code=\"200\",service=\"api\"} 30"));
  CHECK(has_line(page, "temp_max_over_window{room=\"lab\"} 21.5"));
  CHECK_FALSE(has_line(page, "temp{room=\"lab\"} 21.5"));
}

TEST_CASE("windows encode to a remote-write body that decodes back", "[metrics_page]") {
  std::string body;
  std::string error;
  REQUIRE(outputs::encode_windows({counter_view(), histogram_view()}, nullptr, body,
                                  error));
  prom::write_decoder dec;
  auto res = dec.decode(body);
  REQUIRE(res.ok());
  bool total = false;
  bool p99 = false;
  for (auto& s : res.request->series) {
    if (s.name == "http_requests_total") {
      total = true;
      REQUIRE(s.samples.size() == 1);
      CHECK(s.samples[0].value == 130);
      CHECK(s.samples[0].timestamp_ms == 20000);
    }
    if (s.name == "latency_seconds")
      for (auto& l : s.labels)
        if (l.name == "quantile" && l.value == "0.99") // as on /metrics
          p99 = s.samples[0].value == 0.9;
  }
  CHECK(total);
  CHECK(p99);
  auto* meta = res.request->find_metadata("http_requests_total");
  REQUIRE(meta != nullptr);
  CHECK(meta->type == prom::metric_type::counter);
}

TEST_CASE("staleness markers end every output of a series", "[metrics_page]") {
  std::string windows;
  std::string markers;
  std::string error;
  std::vector<series_view> views{counter_view(), gauge_view(), histogram_view()};
  REQUIRE(outputs::encode_windows(views, nullptr, windows, error));
  REQUIRE(outputs::encode_stale_markers(views, nullptr, 99000, markers, error));
  prom::write_decoder a;
  prom::write_decoder b;
  auto exported = a.decode(windows);
  auto ended = b.decode(markers);
  REQUIRE(exported.ok());
  REQUIRE(ended.ok());
  REQUIRE(ended.request->series.size() == exported.request->series.size());
  for (size_t i = 0; i < ended.request->series.size(); ++i) {
    auto& s = ended.request->series[i];
    CHECK(s.name == exported.request->series[i].name);
    CHECK(s.labels.size() == exported.request->series[i].labels.size());
    REQUIRE(s.samples.size() == 1);
    CHECK(prom::is_stale_marker(s.samples[0].value));
    CHECK(s.samples[0].timestamp_ms == 99000);
  }
}
