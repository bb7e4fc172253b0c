#include "prometheus/exposition.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

using namespace tether::prom;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

std::string write_ok(const std::vector<family>& families) {
  std::string out;
  auto err = write_exposition(families, out);
  INFO(err.message);
  REQUIRE_FALSE(err);
  return out;
}

point gauge_point(std::vector<label> labels, double value) {
  point p;
  p.labels = std::move(labels);
  p.value = value;
  return p;
}

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

} // namespace

TEST_CASE("exposition: counter with escaping and timestamps", "[prometheus]") {
  family f;
  f.name = "http_requests_total";
  f.help = "Total requests.\nSecond line with \\ backslash and \"quotes\".";
  f.type = family_type::counter;
  point get = gauge_point({{"method", "GET"}, {"path", "/a\"b\\c\nd"}}, 1027);
  get.timestamp_ms = 1395066363000;
  f.points.push_back(get);
  f.points.push_back(gauge_point({{"method", "POST"}, {"path", ""}}, 3));
  point negative_ts = gauge_point({{"method", "PUT"}}, 0);
  negative_ts.timestamp_ms = -1;
  f.points.push_back(negative_ts);
  CHECK(write_ok({f})
        == "# HELP http_requests_total Total requests.\\nSecond line with \\\\ "
           "backslash and \"quotes\".\n"
           "# TYPE http_requests_total counter\n"
           "http_requests_total{method=\"GET\",path=\"/a\\\"b\\\\c\\nd\"} 1027 "
           "1395066363000\n"
           "http_requests_total{method=\"POST\"} 3\n"
           "http_requests_total{method=\"PUT\"} 0 -1\n");
}

TEST_CASE("exposition: gauge values and special floats", "[prometheus]") {
  family f;
  f.name = "g";
  f.type = family_type::gauge;
  f.points = {
    gauge_point({{"v", "nan"}}, std::nan("")),
    gauge_point({{"v", "pinf"}}, inf),
    gauge_point({{"v", "ninf"}}, -inf),
    gauge_point({{"v", "million"}}, 1e6),
    gauge_point({{"v", "negmillion"}}, -1e6),
    gauge_point({{"v", "largest_integer_form"}}, 999999999999999),
    gauge_point({{"v", "exponent_from_1e15"}}, 1e15),
    gauge_point({{"v", "huge"}}, 1.2345678901234568e20),
    gauge_point({{"v", "tenth"}}, 0.1),
    gauge_point({{"v", "third"}}, 1.0 / 3),
    gauge_point({{"v", "small"}}, 1.5e-7),
    gauge_point({{"v", "neg"}}, -2.5),
    gauge_point({{"v", "negzero"}}, -0.0),
    gauge_point({{"v", "tiny"}}, 5e-324),
    gauge_point({}, 7),
  };
  CHECK(write_ok({f})
        == "# TYPE g gauge\n"
           "g{v=\"nan\"} NaN\n"
           "g{v=\"pinf\"} +Inf\n"
           "g{v=\"ninf\"} -Inf\n"
           "g{v=\"million\"} 1000000\n"
           "g{v=\"negmillion\"} -1000000\n"
           "g{v=\"largest_integer_form\"} 999999999999999\n"
           "g{v=\"exponent_from_1e15\"} 1e+15\n"
           "g{v=\"huge\"} 1.2345678901234568e+20\n"
           "g{v=\"tenth\"} 0.1\n"
           "g{v=\"third\"} 0.3333333333333333\n"
           "g{v=\"small\"} 1.5e-07\n"
           "g{v=\"neg\"} -2.5\n"
           "g{v=\"negzero\"} 0\n"
           "g{v=\"tiny\"} 5e-324\n"
           "g 7\n");
}

TEST_CASE("exposition: histogram buckets become cumulative lines", "[prometheus]") {
  family f;
  f.name = "request_duration_seconds";
  f.help = "Request latency.";
  f.type = family_type::histogram;
  point a;
  a.labels = {{"route", "/"}};
  a.buckets = {{0.1, 2}, {0.5, 3}, {1, 0}};
  a.sum = 2.75;
  a.count = 7; // two observations above 1
  point b;     // explicit +Inf bucket, no labels, a timestamp
  b.buckets = {{1e6, 1}, {inf, 2}};
  b.sum = 10;
  b.count = 3;
  b.timestamp_ms = 5;
  point empty; // no buckets at all
  empty.labels = {{"route", "/idle"}};
  f.points = {a, b, empty};
  CHECK(write_ok({f})
        == "# HELP request_duration_seconds Request latency.\n"
           "# TYPE request_duration_seconds histogram\n"
           "request_duration_seconds_bucket{route=\"/\",le=\"0.1\"} 2\n"
           "request_duration_seconds_bucket{route=\"/\",le=\"0.5\"} 5\n"
           "request_duration_seconds_bucket{route=\"/\",le=\"1\"} 5\n"
           "request_duration_seconds_bucket{route=\"/\",le=\"+Inf\"} 7\n"
           "request_duration_seconds_sum{route=\"/\"} 2.75\n"
           "request_duration_seconds_count{route=\"/\"} 7\n"
           "request_duration_seconds_bucket{le=\"1000000\"} 1 5\n"
           "request_duration_seconds_bucket{le=\"+Inf\"} 3 5\n"
           "request_duration_seconds_sum 10 5\n"
           "request_duration_seconds_count 3 5\n"
           "request_duration_seconds_bucket{route=\"/idle\",le=\"+Inf\"} 0\n"
           "request_duration_seconds_sum{route=\"/idle\"} 0\n"
           "request_duration_seconds_count{route=\"/idle\"} 0\n");
}

TEST_CASE("exposition: summary quantiles, sum and count", "[prometheus]") {
  family f;
  f.name = "rpc_duration_seconds";
  f.help = "RPC latency.";
  f.type = family_type::summary;
  point p;
  p.labels = {{"service", "a\\b"}};
  p.quantiles = {{0, 0.001}, {0.5, 0.05}, {0.99, 0.2}, {1, std::nan("")}};
  p.sum = 17.5;
  p.count = 120;
  point bare;
  bare.sum = 0.5;
  bare.count = 1;
  f.points = {p, bare};
  CHECK(write_ok({f})
        == "# HELP rpc_duration_seconds RPC latency.\n"
           "# TYPE rpc_duration_seconds summary\n"
           "rpc_duration_seconds{service=\"a\\\\b\",quantile=\"0\"} 0.001\n"
           "rpc_duration_seconds{service=\"a\\\\b\",quantile=\"0.5\"} 0.05\n"
           "rpc_duration_seconds{service=\"a\\\\b\",quantile=\"0.99\"} 0.2\n"
           "rpc_duration_seconds{service=\"a\\\\b\",quantile=\"1\"} NaN\n"
           "rpc_duration_seconds_sum{service=\"a\\\\b\"} 17.5\n"
           "rpc_duration_seconds_count{service=\"a\\\\b\"} 120\n"
           "rpc_duration_seconds_sum 0.5\n"
           "rpc_duration_seconds_count 1\n");
}

TEST_CASE("exposition: untyped, caller order, families without points",
          "[prometheus]") {
  family u;
  u.name = "zeta";
  u.help = "Last by name, first in output.";
  u.points = {gauge_point({{"b", "2"}, {"a", "1"}}, 42)}; // label order as given
  family nothing;
  nothing.name = "no_points";
  nothing.help = "Left out.";
  family a;
  a.name = "alpha:ratio";
  a.type = family_type::gauge;
  a.points = {gauge_point({}, 0.5)};
  std::string out = "# existing text\n";
  REQUIRE_FALSE(write_exposition(std::vector<family>{u, nothing, a}, out));
  CHECK(out
        == "# existing text\n"
           "# HELP zeta Last by name, first in output.\n"
           "# TYPE zeta untyped\n"
           "zeta{b=\"2\",a=\"1\"} 42\n"
           "# TYPE alpha:ratio gauge\n"
           "alpha:ratio 0.5\n");
  CHECK(to_string_view(family_type::untyped) == "untyped");
  CHECK(exposition_content_type == "text/plain; version=0.0.4; charset=utf-8");
  std::string again = "# existing text\n";
  REQUIRE_FALSE(write_exposition(std::vector<family>{u, nothing, a}, again));
  CHECK(again == out);
}

TEST_CASE("exposition: refused input leaves the output alone", "[prometheus]") {
  auto check_error = [](const std::vector<family>& families, errc code) {
    std::string out = "unchanged";
    auto err = write_exposition(families, out);
    INFO(err.message);
    CHECK(err.code == code);
    CHECK_FALSE(err.message.empty());
    CHECK(out == "unchanged");
    return err.message;
  };
  auto gauge = [](std::string_view name, std::vector<point> points) {
    family f;
    f.name = name;
    f.type = family_type::gauge;
    f.points = std::move(points);
    return f;
  };
  auto histogram = [](std::vector<bucket> buckets, uint64_t count) {
    family f;
    f.name = "h";
    f.type = family_type::histogram;
    point p;
    p.buckets = std::move(buckets);
    p.count = count;
    f.points = {p};
    return std::vector<family>{f};
  };
  auto summary = [](std::vector<quantile_value> quantiles) {
    family f;
    f.name = "s";
    f.type = family_type::summary;
    point p;
    p.quantiles = std::move(quantiles);
    f.points = {p};
    return std::vector<family>{f};
  };

  SECTION("metric names") {
    check_error({gauge("1abc", {point{}})}, errc::invalid_metric_name);
    check_error({gauge("a-b", {point{}})}, errc::invalid_metric_name);
    check_error({gauge("", {point{}})}, errc::invalid_metric_name);
  }
  SECTION("label names") {
    check_error({gauge("g", {gauge_point({{"a-b", "1"}}, 1)})},
                errc::invalid_label_name);
    check_error({gauge("g", {gauge_point({{"__reserved", "1"}}, 1)})},
                errc::invalid_label_name);
    check_error({gauge("g", {gauge_point({{"", "1"}}, 1)})},
                errc::invalid_label_name);
    auto h = histogram({}, 0);
    h[0].points[0].labels = {{"le", "1"}};
    check_error(h, errc::invalid_label_name);
    auto s = summary({});
    s[0].points[0].labels = {{"quantile", "1"}};
    check_error(s, errc::invalid_label_name);
    // Outside histograms and summaries, `le` and `quantile` are ordinary names.
    CHECK(write_ok({gauge("g", {gauge_point({{"le", "1"}, {"quantile", "2"}}, 1)})})
          == "# TYPE g gauge\ng{le=\"1\",quantile=\"2\"} 1\n");
  }
  SECTION("text that is not UTF-8") {
    check_error({gauge("g", {gauge_point({{"a", "\xff"}}, 1)})}, errc::invalid_utf8);
    auto f = gauge("g", {point{}});
    f.help = "\xe2\x28\xa1";
    check_error({f}, errc::invalid_utf8);
  }
  SECTION("a family name used twice") {
    auto msg = check_error({gauge("g", {point{}}), gauge("x", {point{}}),
                            gauge("g", {gauge_point({{"a", "1"}}, 1)})},
                           errc::duplicate_family);
    CHECK(msg.find("family 2") != std::string::npos);
  }
  SECTION("the same label set twice in a family, in any label order") {
    auto msg = check_error(
      {gauge("g", {gauge_point({{"a", "1"}, {"b", "2"}}, 1),
                   gauge_point({{"a", "1"}}, 2),
                   gauge_point({{"b", "2"}, {"a", "1"}, {"c", ""}}, 3)})},
      errc::duplicate_series);
    CHECK(msg.find("point 2") != std::string::npos);
    CHECK(msg.find("point 0") != std::string::npos);
    check_error({gauge("g", {point{}, point{}})}, errc::duplicate_series);
  }
  SECTION("values that differ only in length-sensitive ways are distinct") {
    CHECK_FALSE(write_ok({gauge("g", {gauge_point({{"a", "1"}, {"b", "2"}}, 1),
                                      gauge_point({{"a", "1b"}}, 2),
                                      gauge_point({{"ab", "1"}}, 3)})})
                  .empty());
  }
  SECTION("a label name twice in a point") {
    check_error({gauge("g", {gauge_point({{"a", "1"}, {"a", "2"}}, 1)})},
                errc::duplicate_label);
  }
  SECTION("buckets") {
    check_error(histogram({{1, 1}, {0.5, 1}}, 2), errc::invalid_buckets);
    check_error(histogram({{1, 1}, {1, 1}}, 2), errc::invalid_buckets);
    check_error(histogram({{std::nan(""), 1}}, 2), errc::invalid_buckets);
    check_error(histogram({{-inf, 1}}, 2), errc::invalid_buckets);
    check_error(histogram({{inf, 1}, {2, 1}}, 2), errc::invalid_buckets);
    check_error(histogram({{1, 2}, {2, 1}}, 2), errc::invalid_buckets);
    check_error(histogram({{1, 1}, {inf, 0}}, 2), errc::invalid_buckets);
    check_error(histogram({{1, UINT64_MAX}, {2, 2}}, UINT64_MAX),
                errc::invalid_buckets);
    CHECK_FALSE(write_ok(histogram({{-1, 1}, {inf, 1}}, 2)).empty());
  }
  SECTION("quantiles") {
    check_error(summary({{1.5, 1}}), errc::invalid_quantiles);
    check_error(summary({{-0.1, 1}}), errc::invalid_quantiles);
    check_error(summary({{std::nan(""), 1}}), errc::invalid_quantiles);
    check_error(summary({{0.9, 1}, {0.5, 1}}), errc::invalid_quantiles);
    check_error(summary({{0.5, 1}, {0.5, 1}}), errc::invalid_quantiles);
  }
}

TEST_CASE("exposition: promtool accepts the output", "[prometheus]") {
  const char* promtool = "/usr/bin/promtool";
  if (access(promtool, X_OK) != 0) {
    WARN("skipped: " << promtool << " is not installed");
    return;
  }
  family requests;
  requests.name = "http_requests_total";
  requests.help = "Requests served, by \"method\".\nCounts \\ all.";
  requests.type = family_type::counter;
  requests.points = {gauge_point({{"method", "GET"}, {"path", "/q\"x\\y\nz"}}, 1e6),
                     gauge_point({{"method", "POST"}, {"path", ""}}, 3)};
  requests.points[0].timestamp_ms = 1700000000000;
  family temperature;
  temperature.name = "room_temperature_celsius";
  temperature.help = "Temperature.";
  temperature.type = family_type::gauge;
  temperature.points = {gauge_point({{"room", "a"}}, -inf),
                        gauge_point({{"room", "b"}}, inf),
                        gauge_point({{"room", "c"}}, std::nan("")),
                        gauge_point({{"room", "d"}}, 1.5e-7),
                        gauge_point({{"room", "\xc3\xa9t\xc3\xa9"}}, 21.25)};
  family latency;
  latency.name = "request_duration_seconds";
  latency.help = "Latency.";
  latency.type = family_type::histogram;
  point h;
  h.labels = {{"route", "/"}};
  h.buckets = {{0.005, 1}, {0.1, 4}, {2.5, 0}, {1e20, 3}};
  h.sum = 12.345;
  h.count = 10;
  point h2;
  h2.buckets = {{1, 1}, {inf, 1}};
  h2.sum = 3;
  h2.count = 2;
  h2.timestamp_ms = 1700000000001;
  latency.points = {h, h2};
  family rpc;
  rpc.name = "rpc_duration_seconds";
  rpc.help = "RPC latency.";
  rpc.type = family_type::summary;
  point s;
  s.labels = {{"service", "x"}};
  s.quantiles = {{0.5, 0.01}, {0.9, 0.25}, {0.99, std::nan("")}};
  s.sum = 100.5;
  s.count = 1000;
  rpc.points = {s};
  family other;
  other.name = "build_info";
  other.help = "Build information.";
  other.points = {gauge_point({{"version", "1.2.3"}}, 1)};

  std::string text;
  REQUIRE_FALSE(write_exposition(
    std::vector<family>{requests, temperature, latency, rpc, other}, text));

  char input[] = "/tmp/tether-exposition-XXXXXX";
  int fd = mkstemp(input);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  close(fd);
  std::string output = std::string{input} + ".out";
  std::string command = std::string{promtool} + " check metrics < " + input + " > "
                        + output + " 2>&1";
  int status = std::system(command.c_str());
  auto report = read_file(output);
  std::remove(input);
  std::remove(output.c_str());
  INFO("exposition:\n" << text << "promtool:\n" << report);
  REQUIRE(status != -1);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
