#include "tether-load/route_plan.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <string>

using namespace tether::tools::load;

namespace {

/// A directory of `slices` slices led in turn by tether-1, -2, -3.
std::string directory_json(int slices) {
  std::string out = R"({"version":7,"slice_count":)" + std::to_string(slices)
                    + R"(,"replication_factor":3,"slices":[)";
  for (int s = 0; s < slices; ++s) {
    out += (s ? "," : "") + std::string{R"({"slice":)"} + std::to_string(s)
           + R"(,"epoch":1,"primary":"tether-)" + std::to_string(s % 3 + 1)
           + R"(","followers":[]})";
  }
  return out + "]}";
}

const char* nodes_json = R"({"version":7,"nodes":[
  {"name":"tether-1","address":"127.0.0.1:7001"},
  {"name":"tether-2","address":"127.0.0.1:7002"},
  {"name":"tether-3","address":"127.0.0.1:7003"}]})";

} // namespace

TEST_CASE("route_plan: the slice of a key is the documented xxh3 remainder") {
  // docs/protocol.md section 12.3.
  CHECK(slice_of("up", 1024) == 356);
  CHECK(slice_of("room_temp_celsius{room=\"lab\"}", 1024) == 416);
  CHECK(slice_of("http_requests_total{code=\"200\",method=\"GET\"}", 1024) == 555);
}

TEST_CASE("route_plan: the table names each slice's primary and its gateway") {
  auto t = parse_route_table(directory_json(16), nodes_json);
  REQUIRE(t.has_value());
  CHECK(t->version == 7);
  CHECK(t->slice_count == 16);
  REQUIRE(t->nodes.size() == 3);
  for (std::uint32_t s = 0; s < 16; ++s) {
    auto n = t->primary[s];
    CHECK(t->nodes[n] == "tether-" + std::to_string(s % 3 + 1));
    CHECK(t->gateways[n].port == 7001 + s % 3);
  }
}

TEST_CASE("route_plan: tables with holes or unknown nodes are refused") {
  auto missing = directory_json(4);
  missing.replace(missing.find(R"("slice":2)"), 9, R"("slice":1)"); // slice 1 twice, slice 2 missing
  CHECK_FALSE(parse_route_table(missing, nodes_json).has_value());
  auto stranger = directory_json(4);
  stranger.replace(stranger.find("tether-2"), 8, "tether-9");
  auto r = parse_route_table(stranger, nodes_json);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().find("tether-9") != std::string::npos);
  CHECK_FALSE(parse_route_table("not json", nodes_json).has_value());
  CHECK_FALSE(parse_route_table(directory_json(4), R"({"nodes":[{"name":"x"}]})").has_value());
}

TEST_CASE("route_plan: every id goes to the node leading its output's slice") {
  auto t = parse_route_table(directory_json(1024), nodes_json);
  REQUIRE(t.has_value());
  load_options opts;
  opts.series = 3000;
  opts.metrics = 10;
  opts.groups = 10;
  opts.fold_series = true;
  opts.connections = 2;
  auto map = output_map::of(opts);
  auto nodes = nodes_of_series(map, opts.series, *t);
  for (std::uint64_t id = 0; id < opts.series; id += 37)
    CHECK(nodes[id] == t->primary[slice_of(map.key(map.output_of(id)), 1024)]);
  // Uniform keys: each producer's cycle is split over the nodes, every id once.
  opts.keys = key_distribution::uniform;
  auto plan = plan_routed(opts, *t);
  std::vector<int> seen(opts.series, 0);
  for (auto& c : plan) {
    REQUIRE(c.producer < 2);
    REQUIRE_FALSE(c.ids->weighted());
    for (std::uint64_t i = 0; i < c.ids->size(); ++i) {
      auto id = c.ids->at(i);
      CHECK(nodes[id] == c.node);
      CHECK(id % 2 == c.producer);
      ++seen[id];
    }
  }
  for (auto n : seen)
    REQUIRE(n == 1);
}

TEST_CASE("route_plan: zipf subsets keep the run's weights within each node") {
  std::vector<std::uint64_t> ids{0, 3, 9};
  auto set = id_subset::zipf(ids, 1.0, 0.5);
  CHECK(set->weighted());
  CHECK(set->share() == 0.5);
  std::mt19937_64 engine{42};
  int counts[10] = {};
  const int draws = 300000;
  for (int i = 0; i < draws; ++i)
    ++counts[set->draw(engine)];
  // Weights 1, 1/4, 1/10 of total 1.35.
  CHECK(counts[0] / double(draws) == Approx(1 / 1.35).margin(0.01));
  CHECK(counts[3] / double(draws) == Approx(0.25 / 1.35).margin(0.01));
  CHECK(counts[9] / double(draws) == Approx(0.1 / 1.35).margin(0.01));
  CHECK(counts[0] + counts[3] + counts[9] == draws);
}
