#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backend.hpp"
#include "credentials.hpp"
#include "gateway_options.hpp"
#include "tls_store.hpp"

namespace tether::gateway {

/// The node's single listener: HTTP (health, operator API) and the WebSocket stream
/// API on one port, plain or TLS only. Owns its I/O threads. Not thread-safe: call
/// from one thread.
class server {
public:
  /// Takes host, port, io_threads and the connection limits from `opts`, the
  /// gateway's own bounds from `limits`, the tokens clients must present from
  /// `credentials` (reloaded on SIGHUP). With `tls` every connection must make a TLS
  /// handshake with its current context (reloaded on SIGHUP); without, the port
  /// speaks plain HTTP.
  server(const node_options& opts, const gateway_limits& limits,
         std::shared_ptr<credential_store> credentials,
         std::shared_ptr<tls_store> tls = nullptr);
  ~server();

  /// Binds host:port (0 = any free port) and listens, before the node exists, so
  /// that the node can advertise the real port. Returns the bound port; throws
  /// std::system_error when it cannot bind.
  uint16_t bind();

  /// Starts accepting connections, served by `b`.
  void serve(std::unique_ptr<backend> b);

  /// Serves until SIGINT or SIGTERM, then stops accepting and closes sessions.
  void run_until_signal();

  /// Stops serving; safe to call more than once.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace tether::gateway
