#include "gateway/gateway_options.hpp"

#include <stdexcept>

namespace tether::gateway {

option_table gateway_option_table(gateway_options& o) {
  auto& l = o.limits;
  return {
    {"tokens-file", &o.tokens_file,
     "client tokens, one `TOKEN ROLE [PRODUCER-PREFIX]` per line (docs/security.md); with "
     "it (or `auth-token`) every endpoint but `/healthz` and `/readyz` needs a token; a "
     "file that does not parse stops the start with exit code 2; re-read on SIGHUP"},
    {"tls-certificate", &o.tls.certificate,
     "the gateway's TLS certificate (PEM, intermediates after it); with `tls-key` the "
     "port speaks only TLS 1.2 or later (`https://`, `wss://`, docs/security.md); "
     "re-read on SIGHUP"},
    {"tls-key", &o.tls.key,
     "the private key of `tls-certificate` (PEM, unencrypted); both or neither, a file "
     "that does not load stops the start with exit code 2"},
    {"tls-client-ca", &o.tls.client_ca,
     "CA certificate(s) (PEM) of client certificates: when set, a client must present a "
     "certificate it signed or the handshake fails; needs `tls-certificate`"},
    {"max-connections", &l.max_connections,
     "open HTTP and WebSocket connections; a connection beyond it is closed as soon as "
     "it is accepted",
     in(4, 1u << 20)},
    {"accept-backoff-min-ms", &l.accept_backoff_min_ms,
     "after a failed accept (out of descriptors: EMFILE, ENFILE) the node waits this "
     "long before accepting again, doubling the wait after each further failure up to "
     "`accept-backoff-max-ms`, which it must not exceed",
     in(1, 10000)},
    {"accept-backoff-max-ms", &l.accept_backoff_max_ms,
     "the longest wait between accepts after failures: the node takes connections "
     "again within this time of descriptors coming back",
     in(1, 60000)},
    {"max-http-header-bytes", &l.max_http_header_bytes,
     "largest HTTP request header, request line and fields together: `431` with "
     "`\"error\":\"HEADER_TOO_LARGE\"` once the header grows past it, then the "
     "connection closes",
     in(1024, 1u << 20)},
    {"max-http-body-bytes", &l.max_http_body_bytes,
     "largest HTTP request body as sent (a remote-write body is compressed): `413` with "
     "`\"error\":\"BODY_TOO_LARGE\"`",
     in(1024, 1u << 30)},
    {"max-http-bodies-bytes", &l.max_http_bodies_bytes,
     "request bodies the node receives and decodes at the same time, counted by their "
     "announced `Content-Length` (a chunked body counts as `max-http-body-bytes`) before "
     "they are read; beyond it `503` with `Retry-After: 1`; at least "
     "`max-http-body-bytes`",
     in(1024, uint64_t{1} << 40)},
    {"max-remote-write-bytes", &l.max_remote_write_bytes,
     "largest uncompressed remote-write request, checked against the snappy header "
     "before decompressing: `413` with `\"error\":\"FRAME_TOO_LARGE\"`",
     in(1024, (1u << 31) - 1)},
    {"http-read-timeout-ms", &l.http_read_timeout_ms,
     "time a connection has to send a whole HTTP request, header and body, from its "
     "start (on a TLS port: the end of its handshake) or from the previous answer; a "
     "client that takes longer is closed without an answer. The time the node takes to "
     "answer does not count; the client must take the answer within the same time",
     in(1000, 3600000)},
    {"tls-handshake-timeout-ms", &l.tls_handshake_timeout_ms,
     "time a connection to a TLS port has from its start to complete the TLS handshake; "
     "one that takes longer is closed without an alert",
     in(1000, 600000)},
    {"http-linger-ms", &l.http_linger_ms,
     "after the last answer on an HTTP connection (an error, `Connection: close`), "
     "time the node still reads and drops what the client sends before it closes, so "
     "that the client reads the answer instead of a reset; also the time a TLS client "
     "that ends its connection has to complete the closing handshake",
     in(100, 600000)},
    {"http-linger-bytes", &l.http_linger_bytes,
     "bytes the node reads and drops during `http-linger-ms`; a client that sends more "
     "is closed at once",
     in(64 << 10, 1u << 30)},
    {"max-send-queue-bytes", &l.max_send_queue_bytes,
     "bytes of frames waiting to be sent to one WebSocket client; a client that lets "
     "more pile up is closed with 1008 (docs/protocol.md section 10)",
     in(64 << 10, 1u << 31)},
    {"max-send-queue-extra-frames", &l.max_send_queue_extra_frames,
     "frames waiting to be sent to one WebSocket client beyond `max-inflight-batches`; "
     "a client that lets more pile up is closed with 1008 like one over "
     "`max-send-queue-bytes`",
     in(16, 1u << 20)},
    {"ws-handshake-timeout-ms", &l.ws_handshake_timeout_ms,
     "time the node's answer to a WebSocket upgrade, and a closing handshake the node "
     "starts (idle timeout, stopping), may take: a client that does not take the `101` "
     "answer, or does not answer the node's close frame, within it loses the connection",
     in(1000, 600000)},
    {"ws-slow-client-grace-ms", &l.ws_slow_client_grace_ms,
     "time a WebSocket client closed with 1008 for reading too slowly has to take its "
     "close frame; its connection is cut after it",
     in(100, 600000)},
    {"max-dashboard-streams", &l.max_dashboard_streams,
     "dashboard event streams (`/v1/dashboard/stream`) served at once; one more is "
     "answered `503` with `Retry-After: 5`",
     in(1, 1024)},
    {"dashboard-write-timeout-ms", &l.dashboard_write_timeout_ms,
     "time one write to a dashboard event stream may take; a browser that does not "
     "take it in time is disconnected (its page reconnects)",
     in(1000, 600000)},
    {"max-metadata-families", &l.max_metadata_families,
     "metric families whose remote-write metadata type the node remembers for requests "
     "without metadata (docs/aggregation.md)",
     in(1, 1u << 24)},
    {"max-subscriptions", &l.max_subscriptions,
     "subscribe requests one WebSocket connection holds; one more is answered "
     "`SUBSCRIPTION_LIMIT` and subscribes nothing",
     in(1, 1u << 20)},
    {"max-subscribed-keys", &l.max_subscribed_keys,
     "distinct keys over all subscriptions of one WebSocket connection; a subscribe "
     "that would exceed it is answered `SUBSCRIPTION_LIMIT` and subscribes nothing",
     in(1, 1u << 24)},
    {"client-log-burst", &l.client_log_burst,
     "log lines clients can cause (libprotobuf's complaints about frames they send) "
     "written per `client-log-period-ms`; later ones in the period are dropped, and "
     "their count is written before the next line let through",
     in(1, 1u << 20)},
    {"client-log-period-ms", &l.client_log_period_ms,
     "the period of `client-log-burst`; one starts with the first line after the "
     "previous period ended",
     in(100, 86400000)},
    {"shutdown-grace-ms", &l.shutdown_grace_ms,
     "on SIGINT or SIGTERM, time the gateway gives its connections to write the close "
     "frames and answers under way before its I/O threads end",
     in(10, 60000)},
  };
}

void configure(caf::actor_system_config& cfg) {
  gateway_options defaults;
  declare_options(cfg, "tether", gateway_option_table(defaults));
}

gateway_options read_gateway_options(const caf::actor_system_config& cfg) {
  gateway_options o;
  if (auto err = read_options(cfg, "tether", gateway_option_table(o)); !err.empty())
    throw std::invalid_argument(err);
  return o;
}

namespace {

/// The rules between options that no single row can state.
std::string check_relations(const gateway_options& opts) {
  auto& l = opts.limits;
  if (l.max_http_bodies_bytes < l.max_http_body_bytes)
    return "tether.max-http-bodies-bytes = " + std::to_string(l.max_http_bodies_bytes)
           + " is below tether.max-http-body-bytes = "
           + std::to_string(l.max_http_body_bytes);
  if (l.accept_backoff_min_ms > l.accept_backoff_max_ms)
    return "tether.accept-backoff-min-ms = " + std::to_string(l.accept_backoff_min_ms)
           + " is above tether.accept-backoff-max-ms = "
           + std::to_string(l.accept_backoff_max_ms);
  auto& t = opts.tls;
  if (t.certificate.empty() != t.key.empty())
    return t.key.empty() ? "tether.tls-certificate needs tether.tls-key (the certificate's "
                           "private key): set both for TLS on the gateway, or neither"
                         : "tether.tls-key needs tether.tls-certificate: set both for TLS "
                           "on the gateway, or neither";
  if (!t.client_ca.empty() && t.certificate.empty())
    return "tether.tls-client-ca needs tether.tls-certificate and tether.tls-key: client "
           "certificates exist only on a TLS gateway";
  return {};
}

} // namespace

std::string check(const gateway_options& opts) {
  auto copy = opts; // the table points into a struct it may write to
  if (auto err = check_options("tether", gateway_option_table(copy)); !err.empty())
    return err;
  return check_relations(opts);
}

} // namespace tether::gateway
