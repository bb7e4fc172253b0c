#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "gateway/backend.hpp"
#include "gateway/credentials.hpp"
#include "gateway/gateway_options.hpp"
#include "gateway/tls_store.hpp"

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

  /// From now on SIGINT and SIGTERM stop serving and SIGHUP reloads the rules, tokens
  /// and TLS files (once the I/O threads run). Without it the gateway leaves the
  /// process's signals alone.
  void handle_signals();

  /// Runs the I/O threads (`io_threads`) in the background; returns at once.
  void start();

  /// Blocks until the I/O threads started by `start` ended (after `stop`).
  void wait();

  /// `handle_signals`, `start`, then `wait`: serves until SIGINT, SIGTERM or `stop`.
  void run_until_signal();

  /// Stops accepting, closes the sessions and, after the shutdown grace, ends the I/O
  /// threads; safe to call more than once and from any thread.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace tether::gateway
