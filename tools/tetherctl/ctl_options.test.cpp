#include "tetherctl/ctl_options.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using tether::tools::ctl::parse_ctl_options;

TEST_CASE("parse_ctl_options: defaults") {
  auto r = parse_ctl_options({"nodes"}, nullptr);
  REQUIRE(r);
  CHECK(r->server.host == "127.0.0.1");
  CHECK(r->server.port == 7480);
  CHECK_FALSE(r->json);
  CHECK(r->timeout == 5000ms);
  CHECK(r->command == "nodes");
  CHECK(r->args.empty());
}

TEST_CASE("parse_ctl_options: --server beats $TETHER_SERVER beats the default") {
  auto from_env = parse_ctl_options({"health"}, "10.0.0.1:9000");
  REQUIRE(from_env);
  CHECK(from_env->server.host == "10.0.0.1");
  CHECK(from_env->server.port == 9000);
  auto from_flag = parse_ctl_options({"--server", "h:1", "health"}, "10.0.0.1:9000");
  REQUIRE(from_flag);
  CHECK(from_flag->server.host == "h");
  CHECK(from_flag->server.port == 1);
  auto empty_env = parse_ctl_options({"health"}, "");
  REQUIRE(empty_env);
  CHECK(empty_env->server.host == "127.0.0.1");
  auto bad_env = parse_ctl_options({"health"}, "::1");
  REQUIRE_FALSE(bad_env);
  CHECK(bad_env.error().find("TETHER_SERVER") != std::string::npos);
}

TEST_CASE("parse_ctl_options: commands with a key, options after the command") {
  auto r = parse_ctl_options({"series", R"(up{job="a,b"})", "--json", "--timeout-ms=250"},
                             nullptr);
  REQUIRE(r);
  CHECK(r->command == "series");
  CHECK(r->args == std::vector<std::string>{R"(up{job="a,b"})"});
  CHECK(r->json);
  CHECK(r->timeout == 250ms);
}

TEST_CASE("parse_ctl_options: usage errors") {
  CHECK_FALSE(parse_ctl_options({}, nullptr));
  CHECK_FALSE(parse_ctl_options({"frobnicate"}, nullptr));
  CHECK_FALSE(parse_ctl_options({"where"}, nullptr));
  CHECK_FALSE(parse_ctl_options({"where", ""}, nullptr));
  CHECK_FALSE(parse_ctl_options({"where", "a", "b"}, nullptr));
  CHECK_FALSE(parse_ctl_options({"nodes", "extra"}, nullptr));
  CHECK_FALSE(parse_ctl_options({"--timeout-ms", "0", "nodes"}, nullptr));
  CHECK_FALSE(parse_ctl_options({"--timeout-ms", "600001", "nodes"}, nullptr));
  CHECK_FALSE(parse_ctl_options({"--server", "host:0", "nodes"}, nullptr));
  CHECK_FALSE(parse_ctl_options({"--verbose", "nodes"}, nullptr));
}

TEST_CASE("parse_ctl_options: --help needs no command") {
  auto r = parse_ctl_options({"--help"}, nullptr);
  REQUIRE(r);
  CHECK(r->help);
  CHECK(tether::tools::ctl::ctl_usage().find("where KEY") != std::string::npos);
}

TEST_CASE("parse_ctl_options: watch takes one or more keys, --windows and a token") {
  auto r = parse_ctl_options({"watch", "a", "b{x=\"1\"}", "--windows", "3"}, nullptr, "tok");
  REQUIRE(r);
  CHECK(r->command == "watch");
  CHECK(r->args == std::vector<std::string>{"a", "b{x=\"1\"}"});
  CHECK(r->windows == 3);
  CHECK(r->token == "tok");
  auto flag = parse_ctl_options({"--token=t2", "watch", "a"}, nullptr, "tok");
  REQUIRE(flag);
  CHECK(flag->token == "t2");
  CHECK(flag->windows == 0);
  CHECK_FALSE(parse_ctl_options({"watch"}, nullptr));
  CHECK_FALSE(parse_ctl_options({"watch", "a", "--windows", "x"}, nullptr));
}

TEST_CASE("parse_ctl_options: drain, move and rebalance arguments") {
  auto drain = parse_ctl_options({"drain", "tether-2"}, nullptr);
  REQUIRE(drain);
  CHECK(drain->command == "drain");
  CHECK(drain->args == std::vector<std::string>{"tether-2"});
  auto move = parse_ctl_options({"move", "12", "tether-3"}, nullptr);
  REQUIRE(move);
  CHECK(move->args == std::vector<std::string>{"12", "tether-3"});
  CHECK(parse_ctl_options({"move", "0", "tether-1"}, nullptr));
  CHECK(parse_ctl_options({"rebalance"}, nullptr));
  CHECK_FALSE(parse_ctl_options({"drain"}, nullptr));
  CHECK_FALSE(parse_ctl_options({"drain", ""}, nullptr));
  CHECK_FALSE(parse_ctl_options({"drain", "a", "b"}, nullptr));
  CHECK_FALSE(parse_ctl_options({"move", "12"}, nullptr));
  CHECK_FALSE(parse_ctl_options({"move", "12", ""}, nullptr));
  CHECK_FALSE(parse_ctl_options({"rebalance", "x"}, nullptr));
  CHECK_FALSE(parse_ctl_options({"move", "-1", "tether-3"}, nullptr)); // an unknown option
  for (const char* slice : {"1.5", "x", "12k", "+3", " 1", "", "18446744073709551616"}) {
    auto bad = parse_ctl_options({"move", slice, "tether-3"}, nullptr);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().find("SLICE must be a non-negative integer") != std::string::npos);
  }
  CHECK(tether::tools::ctl::parse_slice_id("18446744073709551615"));
  CHECK(tether::tools::ctl::ctl_usage().find("move SLICE NODE") != std::string::npos);
}

TEST_CASE("parse_ctl_options: https:// servers, --ca, --cert and --key") {
  auto r = parse_ctl_options({"--server", "https://n1:7481", "--ca", "ca.crt", "nodes"},
                             nullptr);
  REQUIRE(r);
  CHECK(r->server.tls);
  CHECK(r->tls.ca_file == "ca.crt");
  auto env = parse_ctl_options({"nodes"}, "wss://n2:7482");
  REQUIRE(env);
  CHECK(env->server.tls);
  CHECK(env->server.port == 7482);
  auto cert = parse_ctl_options(
    {"--server", "https://n1", "--cert", "c.crt", "--key", "c.key", "health"}, nullptr);
  REQUIRE(cert);
  CHECK(cert->tls.certificate == "c.crt");
  CHECK(cert->tls.key == "c.key");
  auto plain_ca = parse_ctl_options({"--server", "n1:7481", "--ca", "ca.crt", "nodes"},
                                    nullptr);
  REQUIRE_FALSE(plain_ca);
  CHECK(plain_ca.error().find("TLS servers only") != std::string::npos);
  auto half = parse_ctl_options({"--server", "https://n1", "--cert", "c.crt", "nodes"},
                                nullptr);
  REQUIRE_FALSE(half);
  CHECK(half.error() == "--cert and --key go together");
}
