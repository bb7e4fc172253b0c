#pragma once

#include "common/host_port.hpp"
#include "common/result.hpp"

#include <memory>

namespace boost::asio::ssl {
class context;
}

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace tether::tools::ctl {

/// A complete HTTP response as far as `tetherctl` cares.
struct http_response {
  unsigned status = 0;
  std::string content_type;
  std::string body;
};

/// The request methods `tetherctl` sends. POST requests carry an empty body.
enum class http_method { get, post };

/// Explicit bounds on what `http_get` and `http_send` accept from a server.
struct http_limits {
  /// Largest response body accepted.
  std::uint64_t max_body_bytes = 64ULL * 1024 * 1024;
  /// Largest response header block accepted.
  std::uint32_t max_header_bytes = 64 * 1024;
};

/// Sends one `GET target` over HTTP/1.1 to `server` and returns the response, whatever its
/// status. Blocks the caller; `timeout` bounds the whole exchange (resolve, connect, TLS
/// handshake, send, receive). A failure means the server could not be reached or did not
/// answer with a well-formed response in time; its message names the step that failed.
/// Thread safety: reentrant; every call uses its own I/O context.
result<http_response> http_get(const host_port& server, std::string_view target,
                               std::chrono::milliseconds timeout,
                               const http_limits& limits = {});

/// As `http_get`, with the method chosen by `method`; a POST is sent with an empty body
/// (`Content-Length: 0`). A non-empty `token` is sent as `Authorization: Bearer`. A
/// `server.tls` server is asked over TLS with `tls` (from `make_tls_client_context`; a
/// TLS server without it fails).
result<http_response> http_send(const host_port& server, http_method method,
                                std::string_view target, std::chrono::milliseconds timeout,
                                const http_limits& limits = {},
                                std::string_view token = {},
                                std::shared_ptr<boost::asio::ssl::context> tls = nullptr);

} // namespace tether::tools::ctl
