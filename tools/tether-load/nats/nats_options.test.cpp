#include "tether-load/nats/nats_options.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using namespace tether::tools::nats;

TEST_CASE("parse_nats_options: defaults are a 3-server cluster with a 3-replica stream") {
  auto r = parse_nats_options({});
  REQUIRE(r);
  CHECK(r->servers == 3);
  CHECK(r->replicas == 3);
  CHECK(r->storage == storage_kind::memory);
  CHECK(r->urls.empty());
  CHECK(r->window_ms == 10'000);
  CHECK(r->lateness_ms == 5'000);
  CHECK(r->slice_count == 1024);
  CHECK_FALSE(r->pull);
  CHECK(r->fetch == 64);
  CHECK(r->publish_timeout == 1s);
  CHECK(r->ack_wait == 30s);
  CHECK(r->kill_at == 0ms);
  CHECK(r->kill == kill_target::stream_leader);
  CHECK(r->load.retry_timeout == 30s);
  // The workload options keep tether-load's defaults.
  CHECK(r->load.connections == 4);
  CHECK(r->load.batch == 1000);
  CHECK(r->load.series == 10'000);
}

TEST_CASE("parse_nats_options: workload and broker options") {
  auto r = parse_nats_options({"--connections", "2", "--batch", "500", "--keys", "zipf",
                               "--visible-keys", "4", "--fold-series", "--rate", "100k",
                               "--nats-servers", "5", "--replicas", "5", "--storage", "file",
                               "--rules-file", "/x/rules.json", "--fetch", "128",
                               "--nats-port", "15000", "--keep-dir", "--ready-timeout", "5s"});
  REQUIRE(r);
  CHECK(r->load.connections == 2);
  CHECK(r->load.batch == 500);
  CHECK(r->load.keys == tether::tools::load::key_distribution::zipf);
  CHECK(r->load.visible_keys == 4);
  CHECK(r->load.fold_series);
  CHECK(r->load.rate == 100'000);
  CHECK(r->servers == 5);
  CHECK(r->replicas == 5);
  CHECK(r->storage == storage_kind::file);
  CHECK(r->rules_file == "/x/rules.json");
  CHECK(r->fetch == 128);
  CHECK(r->port == 15000);
  CHECK(r->keep_dir);
  CHECK(r->ready_timeout == 5s);
}

TEST_CASE("parse_nats_options: an existing cluster by URL") {
  auto r = parse_nats_options({"--nats-url", "nats://127.0.0.1:4222,nats://127.0.0.1:4223",
                               "--replicas", "5"});
  REQUIRE(r);
  CHECK(r->urls == std::vector<std::string>{"nats://127.0.0.1:4222", "nats://127.0.0.1:4223"});
}

TEST_CASE("parse_nats_options: pull or push consumer") {
  CHECK_FALSE(parse_nats_options({"--consumer", "push"})->pull);
  CHECK(parse_nats_options({"--consumer", "pull"})->pull);
  CHECK_FALSE(parse_nats_options({"--consumer", "poll"}));
}

TEST_CASE("parse_nats_options: failure experiment and retries") {
  auto r = parse_nats_options({"--kill-at", "7.5s", "--kill-server", "consumer-leader",
                               "--publish-timeout", "500ms", "--ack-wait", "2s",
                               "--retry-timeout", "20s"});
  REQUIRE(r);
  CHECK(r->kill_at == 7500ms);
  CHECK(r->kill == kill_target::consumer_leader);
  CHECK(r->publish_timeout == 500ms);
  CHECK(r->ack_wait == 2s);
  CHECK(r->load.retry_timeout == 20s);
  auto by_index = parse_nats_options({"--kill-at", "1s", "--kill-server", "2"});
  REQUIRE(by_index);
  CHECK(by_index->kill == kill_target::index);
  CHECK(by_index->kill_index == 1);
  CHECK(parse_nats_options({"--kill-server", "stream-leader"})->kill
        == kill_target::stream_leader);
  CHECK_FALSE(parse_nats_options({"--kill-server", "4"}));        // 3 servers
  CHECK_FALSE(parse_nats_options({"--kill-server", "0"}));
  CHECK_FALSE(parse_nats_options({"--kill-server", "leader"}));
  CHECK_FALSE(parse_nats_options({"--kill-at", "1s", "--nats-url", "nats://127.0.0.1:4222"}));
  CHECK_FALSE(parse_nats_options({"--publish-timeout", "10ms"}));
  CHECK_FALSE(parse_nats_options({"--ack-wait", "0"}));
}

TEST_CASE("parse_nats_options: usage errors") {
  CHECK_FALSE(parse_nats_options({"--replicas", "3", "--nats-servers", "1"}));
  CHECK_FALSE(parse_nats_options({"--storage", "disk"}));
  CHECK_FALSE(parse_nats_options({"--nats-url", ","}));
  // Options that only make sense against a node are not taken.
  CHECK_FALSE(parse_nats_options({"--server", "127.0.0.1:7480"}));
  CHECK_FALSE(parse_nats_options({"--visible-poll", "1ms"}));
  CHECK_FALSE(parse_nats_options({"extra"}));
  CHECK(parse_nats_options({"--help"})->help);
}
