#pragma once

#include <functional>
#include <memory>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "gateway/backend.hpp"
#include "gateway/credentials.hpp"
#include "gateway/gateway_options.hpp"
#include "gateway/tls_stream.hpp"

namespace tether::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

/// One WebSocket client of `/v1/stream`. Runs on its own strand; at most one write in
/// flight with a queue bounded in frames (`max_inflight_batches` +
/// `max_send_queue_extra_frames`) and in bytes (`max_send_queue_bytes`): a client that
/// lets more pile up is closed with 1008, and its connection is cut when it does not
/// take the close frame within `ws_slow_client_grace_ms` either. Stops reading while
/// `max_inflight_batches` writes are unacknowledged (backpressure). Frames above
/// `max_frame_bytes` are read in pieces and discarded, never buffered whole.
///
/// The session is one class template over the connection's stream (plain TCP or TLS),
/// defined and instantiated in ws_session.cpp only: a plain connection runs exactly
/// the code it ran before TLS existed, with no indirection per frame.
class ws_session {
public:
  virtual ~ws_session();

  /// Accepts the upgrade request and starts the session.
  virtual void run(http::request<http::string_body> req) = 0;

  /// Closes the session with "going away" once queued replies are written.
  /// Thread-safe.
  virtual void shutdown() = 0;
};

/// Runs a task off the I/O threads (the gateway's decode thread): large frames are
/// decoded there, so that one client's frame of tens of thousands of labels does not
/// hold up the other connections of its I/O thread.
using offload_fn = std::function<void(std::function<void()>)>;

/// A session over `stream`, the connection that sent the upgrade request. `slot` is
/// the connection's place among the node's open connections; the session keeps it
/// while it lives. `credentials` decides what the token of the session's `hello` may
/// do.
std::shared_ptr<ws_session>
make_ws_session(plain_stream&& stream, backend& be, const gateway_limits& limits,
                std::shared_ptr<const credential_store> credentials,
                std::shared_ptr<void> slot, offload_fn offload);

/// The same over a TLS connection whose handshake is done.
std::shared_ptr<ws_session>
make_ws_session(tls_stream&& stream, backend& be, const gateway_limits& limits,
                std::shared_ptr<const credential_store> credentials,
                std::shared_ptr<void> slot, offload_fn offload);

} // namespace tether::gateway
