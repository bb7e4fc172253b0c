#include "host_port.hpp"

#include <catch2/catch.hpp>

using tether::tools::host_port;
using tether::tools::parse_host_port;

TEST_CASE("parse_host_port: accepts host, IPv4 and IPv6 with and without port") {
  auto a = parse_host_port("127.0.0.1:7480");
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 7480);
  auto b = parse_host_port("tether-0.tether.svc");
  REQUIRE(b);
  CHECK(b->host == "tether-0.tether.svc");
  CHECK(b->port == tether::tools::default_tether_port);
  auto c = parse_host_port("[::1]:9000");
  REQUIRE(c);
  CHECK(c->host == "::1");
  CHECK(c->port == 9000);
  auto d = parse_host_port("[fe80::1%eth0]", 1234);
  REQUIRE(d);
  CHECK(d->host == "fe80::1%eth0");
  CHECK(d->port == 1234);
  CHECK(parse_host_port("localhost:65535")->port == 65535);
}

TEST_CASE("parse_host_port: rejects malformed addresses") {
  for (auto text : {"", ":7480", "host:", "host:0", "host:65536", "host:12x", "host:-1",
                    "::1", "[::1", "[::1]x", "[]:80", "ws://host:80", "http://host",
                    "a b:80", "host/path:80", "[zz::1]:80"}) {
    INFO(text);
    auto r = parse_host_port(text);
    CHECK_FALSE(r);
  }
  CHECK(parse_host_port("ws://host:80").error().find("scheme") != std::string::npos);
}

TEST_CASE("host_port::to_string brackets IPv6 literals") {
  CHECK(host_port{"127.0.0.1", 7480}.to_string() == "127.0.0.1:7480");
  CHECK(host_port{"::1", 80}.to_string() == "[::1]:80");
  auto round_trip = parse_host_port(host_port{"::1", 80}.to_string());
  REQUIRE(round_trip);
  CHECK(*round_trip == host_port{"::1", 80});
}
