#pragma once

#include <cstdint>
#include <string>

#include "tether/option_table.hpp"

namespace caf {
class actor_system_config;
}

namespace tether::gateway {

/// Bounds on what connections may make the gateway hold, per connection and per
/// node, and for how long. Every field is an option under the `tether.` prefix,
/// declared once in `gateway_option_table` with its description and bounds.
struct gateway_limits {
  /// Open connections (HTTP and WebSocket); beyond it a new connection is closed
  /// at once.
  uint32_t max_connections = 1024;
  /// Largest HTTP request body (a remote-write body is compressed): 413 beyond.
  uint32_t max_http_body_bytes = 32u << 20;
  /// HTTP request bodies the node receives and decodes at the same time, in bytes
  /// of their announced length; a request beyond it is answered 503 (retry).
  uint64_t max_http_bodies_bytes = uint64_t{64} << 20;
  /// Largest uncompressed remote-write request: 413 beyond, checked before
  /// decompressing.
  uint32_t max_remote_write_bytes = 32u << 20;
  /// Bytes of server frames waiting to be sent to one WebSocket client; a client
  /// that lets more pile up is closed with 1008.
  uint32_t max_send_queue_bytes = 16u << 20;
  /// Dashboard event streams (`/v1/dashboard/stream`) served at once; one more is
  /// answered 503.
  uint32_t max_dashboard_streams = 16;
  /// Metric families whose remote-write metadata type the node remembers for
  /// requests without metadata; the one described longest ago goes first.
  uint32_t max_metadata_families = 65536;
  /// Subscribe requests one WebSocket connection may hold, and distinct keys over
  /// all of them; a subscribe beyond either is answered SUBSCRIPTION_LIMIT.
  uint32_t max_subscriptions = 1024;
  uint32_t max_subscribed_keys = 65536;
  /// Largest HTTP request header, request line included: 431 beyond.
  uint32_t max_http_header_bytes = 8192;
  /// Time a connection has for a whole HTTP request (and its answer), from its start
  /// or its previous answer; it is closed without an answer beyond.
  uint32_t http_read_timeout_ms = 30000;
  /// Time a connection to a TLS port has from its start to a finished handshake.
  uint32_t tls_handshake_timeout_ms = 10000;
  /// Time the answer to a WebSocket upgrade and a closing handshake may take; the
  /// connection is cut beyond.
  uint32_t ws_handshake_timeout_ms = 30000;
  /// Log lines clients can cause (libprotobuf's complaints about their frames): at
  /// most `client_log_burst` per `client_log_period_ms`, the others counted.
  uint32_t client_log_burst = 5;
  uint32_t client_log_period_ms = 10000;
  /// After its last answer an HTTP connection reads and drops what the client still
  /// sends for at most `http_linger_ms`, and at most `http_linger_bytes` of it, so that
  /// closing does not reset the connection before the client read the answer. The
  /// time also bounds the TLS closing handshake of a client that ends a connection.
  uint32_t http_linger_ms = 2000;
  uint32_t http_linger_bytes = 64u << 20;
  /// Frames one WebSocket client may have waiting beyond `max_inflight_batches`; a
  /// client that lets more pile up is closed with 1008.
  uint32_t max_send_queue_extra_frames = 1024;
  /// Time a WebSocket client closed for reading too slowly has to take its close
  /// frame before its connection is cut.
  uint32_t ws_slow_client_grace_ms = 2000;
  /// A write to a dashboard event stream that takes longer closes the stream.
  uint32_t dashboard_write_timeout_ms = 10000;
  /// After a failed accept (out of descriptors, most of all) the accept loop waits
  /// `accept_backoff_min_ms`, doubling up to `accept_backoff_max_ms`, before it
  /// accepts again.
  uint32_t accept_backoff_min_ms = 5;
  uint32_t accept_backoff_max_ms = 200;
  /// Time stopping gives the sessions to write their close frames before the I/O
  /// threads end.
  uint32_t shutdown_grace_ms = 500;
};

/// TLS on the gateway port (docs/security.md, "Gateway TLS"). With a certificate and
/// its key the port speaks only TLS (`https://`, `wss://`); without, plain HTTP.
struct gateway_tls {
  /// The gateway's certificate, PEM, intermediates after it (`tether.tls-certificate`).
  std::string certificate;
  /// Its private key, PEM, unencrypted (`tether.tls-key`).
  std::string key;
  /// CA certificate(s), PEM, that must have signed a client's certificate; empty: no
  /// client certificates are asked for (`tether.tls-client-ca`).
  std::string client_ca;

  /// Whether the gateway speaks TLS (after `check`: certificate and key are set).
  bool enabled() const noexcept {
    return !certificate.empty();
  }
};

/// Everything of the gateway that comes from `tether.*` options.
struct gateway_options {
  gateway_limits limits;
  /// The tokens file (`tether.tokens-file`, docs/security.md); empty: none.
  std::string tokens_file;
  gateway_tls tls;
};

/// The gateway's `tether.*` options, the fields pointing into `opts`; made from a
/// default-constructed struct, it holds the defaults. docs/operations.md lists them
/// after the node's (`tetherd --print-options-markdown`).
option_table gateway_option_table(gateway_options& opts);

/// Declares the gateway's options in `cfg`; call before parsing.
void configure(caf::actor_system_config& cfg);

/// Reads the gateway's options after `cfg` parsed the command line and config file;
/// options not given keep their defaults. Throws std::invalid_argument naming an
/// option whose value does not have the option's type.
gateway_options read_gateway_options(const caf::actor_system_config& cfg);

/// Empty when every option is within its bounds and the rules between options hold
/// (the bodies' budget at least the largest body, the accept backoff's minimum at
/// most its maximum; TLS: certificate and key together, a client CA only with them),
/// else a message naming the first option that does not and why. Reads no file.
std::string check(const gateway_options& opts);

} // namespace tether::gateway
