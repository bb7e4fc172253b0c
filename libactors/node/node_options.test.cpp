#include "tether/options.hpp"

#include <set>
#include <sstream>

#include <caf/actor_system_config.hpp>

#include <catch2/catch.hpp>

#include "tether/tether.hpp"

using Catch::Matchers::Contains;

TEST_CASE("the default node options hold", "[options]") {
  CHECK(tether::check(tether::node_options{}).empty());
}

TEST_CASE("check names a node option out of bounds and the bounds", "[options]") {
  tether::node_options o;
  o.slice_count = 0;
  CHECK(tether::check(o) == "tether.slice-count = 0 is out of bounds [1, 65536]");
  o = {};
  o.limits.max_inflight_batches = 129; // beyond the dedup window
  CHECK(tether::check(o) == "tether.max-inflight-batches = 129 is out of bounds [1, 128]");
  o = {};
  o.sketch_accuracy = 0.2;
  CHECK(tether::check(o) == "tether.sketch-accuracy = 0.2 is out of bounds [1e-06, 0.1]");
  o = {};
  o.name = "";
  CHECK_THAT(tether::check(o), Contains("tether.name"));
  o = {};
  o.cluster_port = 7600;
  o.directory_members = {"a", "b"};
  CHECK(tether::check(o) == "tether.directory-members has 2 entries, not 0, 1, 3 or 5");
}

TEST_CASE("check holds the rules between node options", "[options]") {
  tether::node_options o;
  o.heartbeat_ms = 300; // suspect-ms stays 500
  CHECK_THAT(tether::check(o), Contains("tether.suspect-ms = 500 is below 2 heartbeats"));
  o = {};
  o.seeds = {"h:1"};
  CHECK(tether::check(o) == "tether.seeds needs tether.cluster-port");
  o.seeds.clear();
  o.advertise_cluster_port = 17600;
  CHECK(tether::check(o) == "tether.advertise-cluster-port needs tether.cluster-port");
  o.seeds = {"h:1"};
  o.cluster_port = 7600;
  CHECK(tether::check(o) == "tether.directory-members must be set when tether.cluster-port is");
  o.directory_members = {"tether-0", "x", "tether-0"};
  CHECK(tether::check(o) == "tether.directory-members names tether-0 twice");
  o.directory_members = {"tether-0"};
  o.seeds = {"nohost"};
  CHECK(tether::check(o) == "tether.seeds: 'nohost' is not HOST:PORT");
}

TEST_CASE("read_node_options reads what configure declared", "[options]") {
  caf::actor_system_config cfg;
  tether::configure(cfg);
  std::istringstream no_config_file;
  REQUIRE_FALSE(cfg.parse({"--tether.slice-count=64", "--tether.max-frame-bytes=4096",
                           "--tether.directory-members=[\"a\"]",
                           "--tether.advertise-cluster-port=17600"},
                          no_config_file));
  auto o = tether::read_node_options(cfg);
  CHECK(o.slice_count == 64);
  CHECK(o.limits.max_frame_bytes == 4096);
  CHECK(o.directory_members == std::vector<std::string>{"a"});
  CHECK(o.advertise_cluster_port == 17600);
  CHECK(o.port == tether::node_options{}.port);
}

TEST_CASE("node option rows have distinct names and point into the struct",
          "[options]") {
  tether::node_options o;
  auto table = tether::node_option_table(o);
  std::set<std::string_view> names;
  auto begin = reinterpret_cast<const char*>(&o);
  for (auto& opt : table) {
    CAPTURE(opt.name);
    CHECK(names.insert(opt.name).second);
    CHECK_FALSE(opt.description.empty());
    auto field = std::visit([](auto* p) { return reinterpret_cast<const char*>(p); },
                            opt.field);
    CHECK((field >= begin && field < begin + sizeof(o)));
  }
}
