#pragma once

// The node's gateway: one listener for the HTTP operator API, Prometheus remote write
// and `/metrics`, the dashboard and the WebSocket stream API (docs/protocol.md), plain
// or TLS only, with the credentials of a tokens file (docs/security.md). What tetherd
// runs, for an application that embeds a node and wants clients to reach it.
//
//   caf::actor_system_config cfg;
//   tether::configure(cfg);
//   tether::configure_gateway(cfg);
//   cfg.parse(argc, argv);
//   auto opts = tether::read_node_options(cfg);
//   tether::gateway_server gw{cfg, opts};   // reads and checks its options and files
//   gw.handle_signals();                     // only if it may own SIGINT/TERM/HUP
//   opts.port = gw.bind();                   // before the node: it advertises the port
//   caf::actor_system sys{cfg};
//   auto n = tether::spawn_node(sys, opts);
//   gw.serve(n);                             // returns at once
//   gw.wait();                               // until a signal, or stop() elsewhere
//   n.shutdown();

#include <cstdint>
#include <memory>
#include <string>

#include "tether/node.hpp"
#include "tether/options.hpp"

namespace caf {
class actor_system_config;
}

namespace tether {

/// Declares the gateway's `tether.*` options (connection and body limits, the tokens
/// file, the TLS files; docs/operations.md) in `cfg`, beside `tether::configure`'s;
/// call before parsing.
void configure_gateway(caf::actor_system_config& cfg);

/// The options table of docs/operations.md: the node's options, then the gateway's,
/// with their defaults, bounds and descriptions (`tetherd --print-options-markdown`).
std::string options_markdown();

/// The node's listener. Owns its I/O threads (`node_options::io_threads`). Not
/// thread-safe: call from one thread.
class gateway_server {
public:
  /// Reads the gateway's options from `cfg` (parsed), takes host, port, I/O threads
  /// and the legacy `auth_token` from `opts`, loads the tokens file and the TLS files.
  /// Throws std::invalid_argument naming the option or file that is wrong (an option
  /// out of its bounds, a token file or certificate that cannot be used). With TLS
  /// files the port speaks only TLS; SIGHUP reloads rules, tokens and TLS files.
  gateway_server(const caf::actor_system_config& cfg, const node_options& opts);
  ~gateway_server();

  gateway_server(const gateway_server&) = delete;
  gateway_server& operator=(const gateway_server&) = delete;

  /// Binds host:port (0 = any free port) and listens, so that the node can advertise
  /// the real port. Returns the bound port; throws std::system_error when it cannot
  /// bind.
  uint16_t bind();

  /// What tetherd does: from now on SIGINT and SIGTERM stop the gateway and SIGHUP
  /// reloads the rules, tokens and TLS files. Without this call the gateway leaves
  /// the process's signals alone. Call before `serve`.
  void handle_signals();

  /// Accepts connections and serves them with node `n` on the gateway's own I/O
  /// threads (`node_options::io_threads`); returns at once.
  void serve(node n);

  /// Blocks until the gateway stopped (a signal, or `stop` on another thread) and its
  /// I/O threads ended.
  void wait();

  /// Stops accepting, sends every WebSocket client a close frame and ends the I/O
  /// threads after a short grace (`tether.shutdown-grace-ms`); safe to call more than
  /// once and from any thread. The destructor stops and waits.
  void stop();

  /// Whether the port speaks TLS.
  bool tls() const noexcept;

  /// The served certificate's subject and validity ("" without TLS), for a log line.
  std::string tls_certificate() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace tether
