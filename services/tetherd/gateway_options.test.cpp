#include "gateway_options.hpp"

#include <catch2/catch.hpp>

using tether::gateway::check;
using tether::gateway::gateway_options;

TEST_CASE("the default gateway options hold", "[options]") {
  CHECK(check(gateway_options{}).empty());
}

TEST_CASE("check names a gateway option out of bounds and the bounds", "[options]") {
  gateway_options o;
  o.limits.max_connections = 2;
  CHECK(check(o) == "tether.max-connections = 2 is out of bounds [4, 1048576]");
  o = {};
  o.limits.max_send_queue_bytes = 1000;
  CHECK(check(o) == "tether.max-send-queue-bytes = 1000 is out of bounds [65536, 2147483648]");
  o = {};
  o.limits.max_http_bodies_bytes = 4096; // below max-http-body-bytes (32 MiB)
  CHECK(check(o)
        == "tether.max-http-bodies-bytes = 4096 is below tether.max-http-body-bytes = "
           "33554432");
}

TEST_CASE("check: TLS needs a certificate and its key, a client CA needs both", "[options]") {
  gateway_options o;
  o.tls.certificate = "gw.crt";
  CHECK(check(o).find("tether.tls-certificate needs tether.tls-key") == 0);
  o.tls.key = "gw.key";
  CHECK(check(o).empty());
  CHECK(o.tls.enabled());
  o.tls.client_ca = "clients.crt";
  CHECK(check(o).empty());
  o = {};
  o.tls.key = "gw.key";
  CHECK(check(o).find("tether.tls-key needs tether.tls-certificate") == 0);
  o = {};
  o.tls.client_ca = "clients.crt";
  CHECK(check(o).find("tether.tls-client-ca needs tether.tls-certificate") == 0);
  CHECK_FALSE(gateway_options{}.tls.enabled());
}
