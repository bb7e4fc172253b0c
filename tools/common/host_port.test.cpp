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

TEST_CASE("parse_server: https:// and wss:// mean TLS, http:// and ws:// plain") {
  using tether::tools::parse_server;
  auto a = parse_server("https://127.0.0.1:7481");
  REQUIRE(a);
  CHECK(a->tls);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 7481);
  auto b = parse_server("wss://tether-1.example:443/");
  REQUIRE(b);
  CHECK(b->tls);
  CHECK(b->host == "tether-1.example");
  CHECK(b->port == 443);
  auto c = parse_server("ws://[::1]:9000");
  REQUIRE(c);
  CHECK_FALSE(c->tls);
  CHECK(c->host == "::1");
  auto d = parse_server("localhost:80");
  REQUIRE(d);
  CHECK_FALSE(d->tls);
  CHECK(parse_server("http://h")->port == tether::tools::default_tether_port);
  CHECK(parse_server("HTTPS://h:1")->tls);
  CHECK(*parse_server("https://h:1") == host_port{"h", 1, true});
  CHECK_FALSE(*parse_server("https://h:1") == host_port{"h", 1, false});
}

TEST_CASE("parse_server: other schemes, paths and bad addresses are refused") {
  using tether::tools::parse_server;
  for (auto text : {"ftp://h:1", "https://", "https://h:1/v1/stream", "https://u@h:1",
                    "wss://h:0", "https://https://h:1"}) {
    INFO(text);
    CHECK_FALSE(parse_server(text));
  }
  auto r = parse_server("ftp://h:1");
  CHECK(r.error() == "invalid server address 'ftp://h:1': scheme 'ftp' is none of http, "
                     "https, ws, wss");
  CHECK(parse_server("https://h:x").error().find("'https://h:x'") != std::string::npos);
}

TEST_CASE("host_port::to_url names the scheme") {
  CHECK(host_port{"h", 1, true}.to_url() == "https://h:1");
  CHECK(host_port{"h", 1, true}.to_url(true) == "wss://h:1");
  CHECK(host_port{"::1", 2}.to_url(true) == "ws://[::1]:2");
}
