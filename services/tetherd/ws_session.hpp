#pragma once

#include <deque>
#include <map>
#include <tuple>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "backend.hpp"
#include "credentials.hpp"
#include "gateway_options.hpp"
#include "wire/codec.hpp"
#include "wire/keyed_batch.hpp"
#include "wire/tether.pb.h"

namespace tether::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

/// One WebSocket client of `/v1/stream`. Runs on its own strand; at most one write in
/// flight with a queue bounded in frames and in bytes (`max_send_queue_bytes`): a
/// client that lets more pile up is closed with 1008, and its connection is cut when
/// it does not take the close frame either. Stops reading while
/// `max_inflight_batches` writes are unacknowledged (backpressure). Frames above
/// `max_frame_bytes` are read in pieces and discarded, never buffered whole.
class ws_session : public std::enable_shared_from_this<ws_session> {
public:
  /// `slot` is the connection's place among the node's open connections; the session
  /// keeps it while it lives.
  /// `credentials` decides what the token of the session's `hello` may do.
  ws_session(tcp::socket&& socket, backend& be, const gateway_limits& limits,
             std::shared_ptr<const credential_store> credentials,
             std::shared_ptr<void> slot);
  ~ws_session();

  /// Accepts the upgrade request and starts the session.
  void run(http::request<http::string_body> req);

  /// Closes the session with "going away" once queued replies are written.
  /// Thread-safe.
  void shutdown();

private:
  void on_accept(beast::error_code ec);
  void do_read();
  void on_read(beast::error_code ec, std::size_t bytes);
  void on_frame(std::string_view bytes, wire::encoding enc);
  void on_hello(const v1::Hello& hello, wire::encoding enc);
  void on_write(const v1::Write& write, wire::encoding enc);
  void on_query(const v1::Query& query, wire::encoding enc);
  void on_subscribe(const v1::Subscribe& sub, wire::encoding enc);
  /// Why a subscribe request `id` for `keys` (canonical) would exceed the
  /// connection's limits, or empty.
  std::string subscription_limit(uint64_t id, const std::vector<std::string>& keys) const;
  void on_windows(std::vector<series_view> views);
  void send_error(wire::encoding enc, errc code, const std::string& message,
                  uint64_t sequence = 0, uint64_t request_id = 0,
                  int32_t index = -1);
  void send(const v1::ServerFrame& frame, wire::encoding enc);
  void do_write();
  void on_write_done(beast::error_code ec, std::size_t bytes);
  void maybe_resume_reading();
  void close_with(websocket::close_code code, const std::string& reason);
  void close_slow_client();
  void fail(beast::error_code ec, const char* what);

  /// Wraps `f` into a callback for the node that runs it on this session's strand.
  /// With a shared_ptr the pending reply keeps the session alive (a session paused
  /// for backpressure has no other owner); with a weak_ptr it does not.
  template <class Ptr, class F>
  static auto on_strand(Ptr ptr, F f);

  void arm_idle_timer(std::chrono::steady_clock::duration after);

  websocket::stream<beast::tcp_stream> ws_;
  net::steady_timer idle_timer_;
  net::steady_timer window_timer_;
  bool window_timer_armed_ = false;
  /// Window updates gathered per (subscribe request, window start, window end).
  std::map<std::tuple<uint64_t, int64_t, int64_t>, v1::ServerFrame> pending_windows_;
  std::chrono::steady_clock::time_point last_activity_;
  backend& backend_;
  const tether::limits limits_;
  const gateway_limits gateway_limits_;
  std::shared_ptr<const credential_store> credentials_;
  credential credential_; ///< what the hello's token grants; none before hello
  std::shared_ptr<void> slot_;
  net::steady_timer cut_timer_;   ///< ends a connection that takes no close frame
  beast::flat_buffer buffer_;
  std::size_t frame_bytes_ = 0;   ///< bytes of the current message so far
  bool discarding_ = false;       ///< current message exceeded the limit
  bool reading_ = false;
  bool closed_ = false;
  uint32_t inflight_ = 0;         ///< writes sent to the node, not yet answered
  std::deque<std::pair<std::string, bool>> queue_; ///< (bytes, binary)
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  std::shared_ptr<session_backend> session_;
  std::string producer_;
  wire::batch_keyer keyer_;
  v1::ServerFrame out_;
  wire::keyed_batch batch_;
  /// Canonical key -> the subscribe requests that asked for it.
  std::map<std::string, std::vector<uint64_t>> subscriptions_;
  std::map<uint64_t, wire::encoding> request_encoding_; ///< of each subscribe
  bool close_pending_ = false;
  websocket::close_reason close_reason_;
};

} // namespace tether::gateway
