#include "tether-load/load_options.hpp"
#include "tether-load/run_context.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using namespace tether::tools::load;

TEST_CASE("parse_load_options: defaults") {
  auto r = parse_load_options({});
  REQUIRE(r);
  CHECK(r->server.to_string() == "127.0.0.1:7480");
  CHECK(r->connections == 4);
  CHECK(r->batch == 1000);
  CHECK(r->series == 10'000);
  CHECK(r->metrics == 0);
  CHECK(r->groups == 0);
  CHECK(r->duration == 10s);
  CHECK(r->warmup == 0ms);
  CHECK(r->samples == 0);
  CHECK(r->rate == 0);
  CHECK(r->inflight == 8);
  CHECK(r->kind == sample_kind::counter);
  CHECK(r->producer == "tether-load");
  CHECK(r->threads == 1);
  CHECK(r->drain_timeout == 5s);
  CHECK(r->retry_timeout == 30s);
  CHECK_FALSE(r->json);
  CHECK(r->keys == key_distribution::uniform);
  CHECK(r->zipf_s == 1.0);
  CHECK(r->seed == 1);
}

TEST_CASE("parse_load_options: several servers") {
  auto d = parse_load_options({});
  REQUIRE(d);
  REQUIRE(d->servers.size() == 1);
  CHECK(d->servers.front().to_string() == "127.0.0.1:7480");
  auto r = parse_load_options({"--server", "127.0.0.1:7481,127.0.0.1:7482,localhost:7483"});
  REQUIRE(r);
  REQUIRE(r->servers.size() == 3);
  CHECK(r->server.to_string() == "127.0.0.1:7481");
  CHECK(r->servers[2].to_string() == "localhost:7483");
  CHECK_FALSE(parse_load_options({"--server", "127.0.0.1:7481,"}));
  CHECK_FALSE(parse_load_options({"--server", "127.0.0.1:7481,127.0.0.1:99999"}));
}

TEST_CASE("parse_load_options: visibility measurement") {
  auto d = parse_load_options({});
  REQUIRE(d);
  CHECK(d->visible_keys == 0);
  CHECK(d->visible_poll == 1ms);
  CHECK_FALSE(d->fold_series);
  auto r = parse_load_options({"--visible-keys", "8", "--visible-poll", "0", "--fold-series"});
  REQUIRE(r);
  CHECK(r->visible_keys == 8);
  CHECK(r->visible_poll == 0ms);
  CHECK(r->fold_series);
  CHECK(parse_load_options({"--visible-poll", "250ms"})->visible_poll == 250ms);
  CHECK_FALSE(parse_load_options({"--visible-keys", "65"}));
  CHECK_FALSE(parse_load_options({"--visible-poll", "2s"}));
}

TEST_CASE("parse_load_options: key distribution") {
  auto r = parse_load_options({"--keys", "zipf", "--zipf-s", "1.25", "--seed", "99"});
  REQUIRE(r);
  CHECK(r->keys == key_distribution::zipf);
  CHECK(r->zipf_s == 1.25);
  CHECK(r->seed == 99);
  CHECK(parse_load_options({"--zipf-s", "0"})->zipf_s == 0.0);
  CHECK(parse_load_options({"--zipf-s=10"})->zipf_s == 10.0);
  for (auto bad : {"-0.5", "10.5", "nan", "inf", "1x", "", "1e400"}) {
    CAPTURE(bad);
    auto e = parse_load_options({"--zipf-s", bad});
    REQUIRE_FALSE(e);
    CHECK(e.error().find("--zipf-s") != std::string::npos);
  }
  auto e = parse_load_options({"--keys", "pareto"});
  REQUIRE_FALSE(e);
  CHECK(e.error() == "invalid value 'pareto' for --keys: expected uniform or zipf");
}

TEST_CASE("parse_load_options: every option") {
  auto r = parse_load_options({"--server", "10.1.2.3:9000", "--connections", "16", "--batch",
                               "5k", "--series=1M", "--metrics", "100", "--groups", "10k", "--duration", "2.5", "--samples", "10M",
                               "--inflight", "32", "--rate", "50k", "--kind", "gauge", "--producer", "bench_1",
                               "--token", "t0k", "--threads", "2", "--connect-timeout",
                               "750ms", "--drain-timeout", "0", "--max-frame-bytes", "1M",
                               "--retry-timeout", "0", "--json", "--quiet"});
  REQUIRE(r);
  CHECK(r->server.host == "10.1.2.3");
  CHECK(r->server.port == 9000);
  CHECK(r->connections == 16);
  CHECK(r->batch == 5000);
  CHECK(r->series == 1'000'000);
  CHECK(r->metrics == 100);
  CHECK(r->groups == 10'000);
  CHECK(r->duration == 2500ms);
  CHECK(r->samples == 10'000'000);
  CHECK(r->inflight == 32);
  CHECK(r->rate == 50'000);
  CHECK(r->kind == sample_kind::gauge);
  CHECK(r->producer == "bench_1");
  CHECK(r->token == "t0k");
  CHECK(r->threads == 2);
  CHECK(r->connect_timeout == 750ms);
  CHECK(r->drain_timeout == 0ms);
  CHECK(r->retry_timeout == 0ms);
  CHECK(r->max_frame_bytes == 1'000'000);
  CHECK(r->json);
  CHECK(r->quiet);
}

TEST_CASE("parse_load_options: out-of-bounds values are usage errors") {
  for (auto args : std::vector<std::vector<std::string_view>>{
         {"--connections", "0"},
         {"--connections", "5000"},
         {"--batch", "0"},
         {"--batch", "2M"},
         {"--series", "0"},
         {"--metrics", "100001"},
         {"--metrics", "-1"},
         {"--groups", "200M"},
         {"--inflight", "0"},
         {"--inflight", "2000"},
         {"--rate", "2G"},
         {"--rate", "-5"},
         {"--rate", "1.5k"},
         {"--threads", "65"},
         {"--duration", "50ms"},
         {"--duration", "25h"},
         {"--warmup", "61s"},
         {"--warmup", "10s"}, // not shorter than the default --duration
         {"--drain-timeout", "2m"},
         {"--retry-timeout", "11m"},
         {"--kind", "histogram"},
         {"--producer", ""},
         {"--producer", "has space"},
         {"--producer", std::string_view{"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklm"}},
         {"--server", "nope:"},
         {"stray"},
         {"--frobnicate"},
       }) {
    INFO(args.front() << " " << (args.size() > 1 ? args[1] : ""));
    CHECK_FALSE(parse_load_options(args));
  }
}

TEST_CASE("parse_load_options: --help") {
  auto r = parse_load_options({"--help"});
  REQUIRE(r);
  CHECK(r->help);
  CHECK(load_usage().find("--inflight N") != std::string::npos);
  CHECK(load_usage().find("--rate N") != std::string::npos);
  CHECK(load_usage().find("--metrics M") != std::string::npos);
  CHECK(load_usage().find("--groups G") != std::string::npos);
}

TEST_CASE("parse_load_options: --rate takes multiplier suffixes, 0 is closed loop") {
  CHECK(parse_load_options({"--rate", "2M"})->rate == 2'000'000);
  CHECK(parse_load_options({"--rate=20000"})->rate == 20'000);
  CHECK(parse_load_options({"--rate", "0"})->rate == 0);
  CHECK(parse_load_options({"--rate", "1G"})->rate == 1'000'000'000);
}

TEST_CASE("parse_load_options: wss:// servers, --ca, --cert and --key") {
  auto r = parse_load_options({"--server", "wss://a:1,wss://b:2", "--ca", "ca.crt"});
  REQUIRE(r);
  CHECK(tether::tools::load::uses_tls(*r));
  CHECK(r->server.tls);
  CHECK(r->servers.size() == 2);
  CHECK(r->servers[1].tls);
  CHECK(r->tls.ca_file == "ca.crt");
  CHECK_FALSE(tether::tools::load::uses_tls(*parse_load_options({"--server", "a:1"})));
  auto mixed = parse_load_options({"--server", "wss://a:1,b:2"});
  REQUIRE_FALSE(mixed);
  CHECK(mixed.error().find("wss://") != std::string::npos);
  auto plain_ca = parse_load_options({"--server", "a:1", "--ca", "ca.crt"});
  REQUIRE_FALSE(plain_ca);
  CHECK(plain_ca.error().find("TLS servers only") != std::string::npos);
  CHECK_FALSE(parse_load_options({"--server", "wss://a:1", "--key", "k.pem"}));
}

TEST_CASE("--warmup leaves the first batches out of the ack latency") {
  auto r = parse_load_options({"--duration", "7", "--warmup", "2s"});
  REQUIRE(r);
  CHECK(r->duration == 7s);
  CHECK(r->warmup == 2s);
  run_context ctx{*r, "run"};
  auto t0 = std::chrono::steady_clock::now();
  ctx.start_measuring(t0);
  CHECK_FALSE(ctx.measured(t0));
  CHECK_FALSE(ctx.measured(t0 + 1999ms));
  CHECK(ctx.measured(t0 + 2s));
  CHECK(ctx.measured(t0 + 5s));
  auto none = parse_load_options({});
  REQUIRE(none);
  run_context all{*none, "run"};
  all.start_measuring(t0);
  CHECK(all.measured(t0)); // without --warmup every batch counts
}
