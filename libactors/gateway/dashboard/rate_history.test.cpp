#include "gateway/dashboard/rate_history.hpp"

#include <catch2/catch.hpp>

using tether::gateway::dashboard::rate_history;

TEST_CASE("rate_history turns counters into rates per node, bounded") {
  rate_history h{2, 2};
  CHECK(h.observe("a", 1000, 100, 10) == nullptr);
  auto* p = h.observe("a", 2000, 300, 13);
  REQUIRE(p != nullptr);
  CHECK(p->ingest == Approx(200));
  CHECK(p->windows == Approx(3));
  h.observe("a", 3000, 300, 13);
  h.observe("a", 3500, 400, 14);
  size_t points = 0;
  h.for_each([&](auto&, auto& xs) { points += xs.size(); });
  CHECK(points == 2); // the oldest point fell out
  CHECK(h.observe("a", 4000, 5, 0) == nullptr); // restarted: counters went back
  CHECK(h.observe("a", 5000, 15, 1)->ingest == Approx(10));
  h.observe("b", 4500, 0, 0);
  h.observe("c", 6000, 0, 0); // a third node: "b", heard from longest ago, goes
  size_t nodes = 0;
  h.for_each([&](auto&, auto&) { ++nodes; });
  CHECK(nodes == 2);
}
