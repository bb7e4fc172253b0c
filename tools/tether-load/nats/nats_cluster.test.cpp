#include "tether-load/nats/nats_cluster.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace tether::tools::nats;

TEST_CASE("server_config: loopback listeners, JetStream store and routes to every server") {
  std::vector<server_ports> ports{{4222, 6222}, {4223, 6223}, {4224, 6224}};
  auto text = server_config(1, ports, "/tmp/x/n2");
  CHECK(text.find("server_name: \"n2\"\n") != std::string::npos);
  CHECK(text.find("listen: \"127.0.0.1:4223\"\n") != std::string::npos);
  CHECK(text.find("jetstream {\n  store_dir: \"/tmp/x/n2\"\n}") != std::string::npos);
  CHECK(text.find("cluster {\n  name: \"tether-bench\"\n  listen: \"127.0.0.1:6223\"")
        != std::string::npos);
  for (auto port : {"6222", "6223", "6224"})
    CHECK(text.find(std::string{"\"nats-route://127.0.0.1:"} + port + "\"") != std::string::npos);
  // Nothing listens beyond loopback.
  CHECK(text.find("0.0.0.0") == std::string::npos);
}

TEST_CASE("server_config: a single server has no cluster block; paths are quoted") {
  std::vector<server_ports> ports{{4222, 6222}};
  auto text = server_config(0, ports, "/tmp/a \"b\"");
  CHECK(text.find("cluster") == std::string::npos);
  CHECK(text.find("store_dir: \"/tmp/a \\\"b\\\"\"") != std::string::npos);
}

TEST_CASE("choose_ports: from a base port, or distinct free ports") {
  auto fixed = choose_ports(3, 15000);
  REQUIRE(fixed.size() == 3);
  CHECK(fixed[0].client == 15000);
  CHECK(fixed[2].client == 15002);
  CHECK(fixed[2].cluster == 15012);
  auto free = choose_ports(3, 0);
  REQUIRE(free.size() == 3);
  std::set<std::uint16_t> all;
  for (auto& p : free) {
    CHECK(p.client != 0);
    CHECK(p.cluster != 0);
    all.insert(p.client);
    all.insert(p.cluster);
  }
  CHECK(all.size() == 6);
}
