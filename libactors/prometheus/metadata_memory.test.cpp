#include "prometheus/metadata_memory.hpp"

#include <catch2/catch.hpp>

using namespace tether::prom;

namespace {

write_request_view described(std::vector<family_metadata> metadata) {
  write_request_view r;
  r.metadata = std::move(metadata);
  return r;
}

} // namespace

TEST_CASE("metadata_memory types later requests by what earlier ones said",
          "[prometheus]") {
  metadata_memory memory{2};
  memory.remember(described({{"http_requests", metric_type::counter, {}, {}},
                             {"queue_depth", metric_type::gauge, {}, {}},
                             {"what", metric_type::unknown, {}, {}}}));
  CHECK(memory.size() == 2);

  std::vector<label> none;
  std::vector<sample> one{{1, 1000}};
  write_request_view samples;
  samples.series = {{"http_requests", none, one}, {"queue_depth", none, one},
                    {"other", none, one}};
  write_request_view out;
  std::deque<std::string> names;
  REQUIRE(memory.complete(samples, out, names));
  REQUIRE(out.series.size() == 3);
  REQUIRE(out.metadata_for_series("http_requests") != nullptr);
  CHECK(out.metadata_for_series("http_requests")->type == metric_type::counter);
  CHECK(out.metadata_for_series("queue_depth")->type == metric_type::gauge);
  CHECK(out.metadata_for_series("other") == nullptr);

  SECTION("a classic histogram's series find their family") {
    memory.remember(described({{"latency_seconds", metric_type::histogram, {}, {}}}));
    write_request_view h;
    h.series = {{"latency_seconds_bucket", none, one}};
    write_request_view hout;
    REQUIRE(memory.complete(h, hout, names));
    CHECK(hout.metadata_for_series("latency_seconds_bucket")->type
          == metric_type::histogram);
    // capacity 2: the family described longest ago is forgotten
    CHECK(memory.size() == 2);
    write_request_view c;
    c.series = {{"http_requests", none, one}};
    CHECK_FALSE(memory.complete(c, hout, names));
  }

  SECTION("a request's own metadata wins and needs nothing added") {
    auto own = described({{"http_requests", metric_type::gauge, {}, {}}});
    own.series = {{"http_requests", none, one}};
    write_request_view untouched;
    CHECK_FALSE(memory.complete(own, untouched, names));
  }
}
