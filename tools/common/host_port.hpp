#pragma once

#include "result.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace tether::tools {

/// The default port of a Tether node's HTTP/WebSocket gateway.
inline constexpr std::uint16_t default_tether_port = 7480;

/// A server address as given on a command line: a host name or IP literal, a port,
/// and whether the server speaks TLS.
struct host_port {
  /// Host name, IPv4 literal or IPv6 literal (without brackets).
  std::string host;
  /// TCP port, never 0.
  std::uint16_t port = default_tether_port;
  /// The server speaks TLS (`https://` or `wss://` given): connections make a TLS
  /// handshake that verifies the server's certificate names `host`.
  bool tls = false;

  /// The address in `HOST:PORT` form, with brackets around IPv6 literals; suitable for
  /// an HTTP `Host` header.
  std::string to_string() const;

  /// The address as a URL, e.g. `https://127.0.0.1:7481`, or with `websocket`
  /// `wss://127.0.0.1:7481` (`http`/`ws` for a plain server); for messages.
  std::string to_url(bool websocket = false) const;

  friend bool operator==(const host_port& x, const host_port& y) {
    return x.host == y.host && x.port == y.port && x.tls == y.tls;
  }
};

/// Parses `HOST`, `HOST:PORT`, `[IPV6]` or `[IPV6]:PORT`. A missing port is
/// `default_port`. The port must be in 1..65535; the host must be non-empty and
/// contain no whitespace, `/`, `@` or `?`. URL schemes are rejected with a hint.
result<host_port> parse_host_port(std::string_view text,
                                  std::uint16_t default_port = default_tether_port);

/// Parses a Tether server address: what `parse_host_port` takes, optionally after a
/// scheme and with a trailing `/`. `https://` and `wss://` mean TLS (`tls` is set);
/// `http://`, `ws://` and no scheme mean plain TCP. A node serves HTTP and WebSocket
/// on one port, so `https://` and `wss://` name the same server (and so do `http://`
/// and `ws://`). Other schemes, paths, queries and user names are rejected.
result<host_port> parse_server(std::string_view text,
                               std::uint16_t default_port = default_tether_port);

} // namespace tether::tools
