#pragma once

#include <cstdint>
#include <string>

namespace caf {
class actor_system_config;
}

namespace tether::gateway {

/// Bounds on what connections may make the gateway hold, per connection and per
/// node. Declared once in `configure` under the `tether.` prefix; docs/operations.md
/// lists them with their defaults.
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
};

/// Declares the gateway's options in `cfg`; call before parsing.
void configure(caf::actor_system_config& cfg);

/// Reads the gateway's options after `cfg` parsed the command line and config file.
gateway_limits read_gateway_limits(const caf::actor_system_config& cfg);

/// The tokens file (`tether.tokens-file`, docs/security.md); empty: none.
std::string read_tokens_file(const caf::actor_system_config& cfg);

/// Empty when every option is within its bounds, else a message naming the first
/// one that is not.
std::string check(const gateway_limits& l);

} // namespace tether::gateway
