#include "gateway/gateway_options.hpp"

#include <string_view>
#include <variant>

#include <catch2/catch.hpp>

using tether::gateway::check;
using tether::gateway::gateway_limits;
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

namespace {

/// The field of the gateway's option `name` in the table made from `o`; null when
/// the table has no such uint32 option.
const uint32_t* field_of(gateway_options& o, std::string_view name) {
  for (auto& row : tether::gateway::gateway_option_table(o))
    if (row.name == name) {
      auto p = std::get_if<uint32_t*>(&row.field);
      return p == nullptr ? nullptr : *p;
    }
  return nullptr;
}

} // namespace

TEST_CASE("the gateway's header bound, timeouts and log limit are options with the former "
          "values as defaults",
          "[options]") {
  gateway_options o;
  auto& l = o.limits;
  CHECK(field_of(o, "max-http-header-bytes") == &l.max_http_header_bytes);
  CHECK(field_of(o, "http-read-timeout-ms") == &l.http_read_timeout_ms);
  CHECK(field_of(o, "tls-handshake-timeout-ms") == &l.tls_handshake_timeout_ms);
  CHECK(field_of(o, "ws-handshake-timeout-ms") == &l.ws_handshake_timeout_ms);
  CHECK(field_of(o, "client-log-burst") == &l.client_log_burst);
  CHECK(field_of(o, "client-log-period-ms") == &l.client_log_period_ms);
  CHECK(l.max_http_header_bytes == 8192);
  CHECK(l.http_read_timeout_ms == 30000);
  CHECK(l.tls_handshake_timeout_ms == 10000);
  CHECK(l.ws_handshake_timeout_ms == 30000);
  CHECK(l.client_log_burst == 5);
  CHECK(l.client_log_period_ms == 10000);
}

TEST_CASE("check refuses the gateway's header bound, timeouts and log limit out of bounds",
          "[options]") {
  auto with = [](auto set) {
    gateway_options o;
    set(o.limits);
    return check(o);
  };
  CHECK(with([](gateway_limits& l) { l.max_http_header_bytes = 1023; })
        == "tether.max-http-header-bytes = 1023 is out of bounds [1024, 1048576]");
  CHECK(with([](gateway_limits& l) { l.max_http_header_bytes = (1u << 20) + 1; })
        == "tether.max-http-header-bytes = 1048577 is out of bounds [1024, 1048576]");
  CHECK(with([](gateway_limits& l) { l.http_read_timeout_ms = 999; })
        == "tether.http-read-timeout-ms = 999 is out of bounds [1000, 3600000]");
  CHECK(with([](gateway_limits& l) { l.http_read_timeout_ms = 3600001; })
        == "tether.http-read-timeout-ms = 3600001 is out of bounds [1000, 3600000]");
  CHECK(with([](gateway_limits& l) { l.tls_handshake_timeout_ms = 0; })
        == "tether.tls-handshake-timeout-ms = 0 is out of bounds [1000, 600000]");
  CHECK(with([](gateway_limits& l) { l.ws_handshake_timeout_ms = 600001; })
        == "tether.ws-handshake-timeout-ms = 600001 is out of bounds [1000, 600000]");
  CHECK(with([](gateway_limits& l) { l.client_log_burst = 0; })
        == "tether.client-log-burst = 0 is out of bounds [1, 1048576]");
  CHECK(with([](gateway_limits& l) { l.client_log_period_ms = 99; })
        == "tether.client-log-period-ms = 99 is out of bounds [100, 86400000]");
  // The bounds themselves are taken.
  CHECK(with([](gateway_limits& l) {
          l.max_http_header_bytes = 1024;
          l.http_read_timeout_ms = 1000;
          l.tls_handshake_timeout_ms = 600000;
          l.ws_handshake_timeout_ms = 1000;
          l.client_log_burst = 1;
          l.client_log_period_ms = 86400000;
        }).empty());
}

TEST_CASE("the gateway's linger, queue, grace, backoff and dashboard limits are options "
          "with the former values as defaults",
          "[options]") {
  gateway_options o;
  auto& l = o.limits;
  CHECK(field_of(o, "http-linger-ms") == &l.http_linger_ms);
  CHECK(field_of(o, "http-linger-bytes") == &l.http_linger_bytes);
  CHECK(field_of(o, "max-send-queue-extra-frames") == &l.max_send_queue_extra_frames);
  CHECK(field_of(o, "ws-slow-client-grace-ms") == &l.ws_slow_client_grace_ms);
  CHECK(field_of(o, "dashboard-write-timeout-ms") == &l.dashboard_write_timeout_ms);
  CHECK(field_of(o, "accept-backoff-min-ms") == &l.accept_backoff_min_ms);
  CHECK(field_of(o, "accept-backoff-max-ms") == &l.accept_backoff_max_ms);
  CHECK(field_of(o, "shutdown-grace-ms") == &l.shutdown_grace_ms);
  CHECK(l.http_linger_ms == 2000);
  CHECK(l.http_linger_bytes == 64u << 20);
  CHECK(l.max_send_queue_extra_frames == 1024);
  CHECK(l.ws_slow_client_grace_ms == 2000);
  CHECK(l.dashboard_write_timeout_ms == 10000);
  CHECK(l.accept_backoff_min_ms == 5);
  CHECK(l.accept_backoff_max_ms == 200);
  CHECK(l.shutdown_grace_ms == 500);
}

TEST_CASE("check refuses the gateway's linger, queue, grace, backoff and dashboard limits "
          "out of bounds",
          "[options]") {
  auto with = [](auto set) {
    gateway_options o;
    set(o.limits);
    return check(o);
  };
  CHECK(with([](gateway_limits& l) { l.http_linger_ms = 99; })
        == "tether.http-linger-ms = 99 is out of bounds [100, 600000]");
  CHECK(with([](gateway_limits& l) { l.http_linger_ms = 600001; })
        == "tether.http-linger-ms = 600001 is out of bounds [100, 600000]");
  CHECK(with([](gateway_limits& l) { l.http_linger_bytes = 65535; })
        == "tether.http-linger-bytes = 65535 is out of bounds [65536, 1073741824]");
  CHECK(with([](gateway_limits& l) { l.http_linger_bytes = (1u << 30) + 1; })
        == "tether.http-linger-bytes = 1073741825 is out of bounds [65536, 1073741824]");
  CHECK(with([](gateway_limits& l) { l.max_send_queue_extra_frames = 15; })
        == "tether.max-send-queue-extra-frames = 15 is out of bounds [16, 1048576]");
  CHECK(with([](gateway_limits& l) { l.max_send_queue_extra_frames = (1u << 20) + 1; })
        == "tether.max-send-queue-extra-frames = 1048577 is out of bounds [16, 1048576]");
  CHECK(with([](gateway_limits& l) { l.ws_slow_client_grace_ms = 99; })
        == "tether.ws-slow-client-grace-ms = 99 is out of bounds [100, 600000]");
  CHECK(with([](gateway_limits& l) { l.dashboard_write_timeout_ms = 999; })
        == "tether.dashboard-write-timeout-ms = 999 is out of bounds [1000, 600000]");
  CHECK(with([](gateway_limits& l) { l.accept_backoff_min_ms = 0; })
        == "tether.accept-backoff-min-ms = 0 is out of bounds [1, 10000]");
  CHECK(with([](gateway_limits& l) { l.accept_backoff_max_ms = 60001; })
        == "tether.accept-backoff-max-ms = 60001 is out of bounds [1, 60000]");
  CHECK(with([](gateway_limits& l) { l.shutdown_grace_ms = 9; })
        == "tether.shutdown-grace-ms = 9 is out of bounds [10, 60000]");
  CHECK(with([](gateway_limits& l) { l.shutdown_grace_ms = 60001; })
        == "tether.shutdown-grace-ms = 60001 is out of bounds [10, 60000]");
  // Each within its bounds, but the backoff's minimum above its maximum.
  CHECK(with([](gateway_limits& l) {
          l.accept_backoff_min_ms = 300;
          l.accept_backoff_max_ms = 200;
        })
        == "tether.accept-backoff-min-ms = 300 is above tether.accept-backoff-max-ms = 200");
  // The bounds themselves are taken, and a backoff of one fixed wait.
  CHECK(with([](gateway_limits& l) {
          l.http_linger_ms = 100;
          l.http_linger_bytes = 1u << 30;
          l.max_send_queue_extra_frames = 16;
          l.ws_slow_client_grace_ms = 600000;
          l.dashboard_write_timeout_ms = 1000;
          l.accept_backoff_min_ms = 10000;
          l.accept_backoff_max_ms = 10000;
          l.shutdown_grace_ms = 10;
        }).empty());
  CHECK(with([](gateway_limits& l) {
          l.http_linger_ms = 600000;
          l.http_linger_bytes = 64 << 10;
          l.max_send_queue_extra_frames = 1u << 20;
          l.ws_slow_client_grace_ms = 100;
          l.dashboard_write_timeout_ms = 600000;
          l.accept_backoff_min_ms = 1;
          l.accept_backoff_max_ms = 60000;
          l.shutdown_grace_ms = 60000;
        }).empty());
}
