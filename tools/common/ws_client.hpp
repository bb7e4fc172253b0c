#pragma once

#include "common/tls_client.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/stream.hpp>

namespace tether::tools {

/// The stream API's path (docs/protocol.md, section 2).
constexpr const char* stream_api_path = "/v1/stream";

/// How a tool's connection to the stream API is set up (`ws_client::configure`).
struct stream_setup {
  /// The `User-Agent` of the upgrade request.
  std::string user_agent;
  /// Bounds the TLS and WebSocket handshakes and the closing handshake.
  std::chrono::milliseconds handshake_timeout{5000};
  /// The largest message the tool reads; a larger one fails the read.
  std::size_t max_message_bytes = 16u << 20;
  /// Binary (protobuf) frames, or text (JSON) frames.
  bool binary = true;
};

/// A client WebSocket over plain TCP or over TLS, chosen when it is made: the
/// operations the tools use, forwarded to Beast's `websocket::stream` of the chosen
/// kind (a plain connection runs Beast's plain stream, nothing in between but one
/// branch per call). With TLS, `async_handshake` makes the TLS handshake first,
/// verifying that the server's certificate names the host of the `Host` value it is
/// given, then the WebSocket handshake.
///
/// `next_layer()` is the TCP socket beneath either kind, so that Beast's
/// `get_lowest_layer` finds it (connect, socket options, close).
///
/// Thread safety: as Beast's stream; use it from one strand.
class ws_client {
public:
  using tcp = boost::asio::ip::tcp;
  using plain_ws = boost::beast::websocket::stream<tcp::socket>;
  using tls_ws = boost::beast::websocket::stream<boost::beast::ssl_stream<tcp::socket>>;

  /// A plain WebSocket whose socket uses `ex` (an executor or an io_context).
  template <class ExecutorOrContext>
  explicit ws_client(ExecutorOrContext&& ex) : ws_(std::in_place_type<plain_ws>, ex) {
  }

  /// A WebSocket over TLS with `tls` (from `make_tls_client_context`), or a plain one
  /// when `tls` is null.
  template <class ExecutorOrContext>
  ws_client(ExecutorOrContext&& ex, std::shared_ptr<boost::asio::ssl::context> tls)
    : ws_(std::in_place_type<plain_ws>, ex), tls_(std::move(tls)) {
    if (tls_)
      ws_.template emplace<tls_ws>(ex, *tls_);
  }

  bool uses_tls() const noexcept {
    return tls_ != nullptr;
  }

  /// The TCP socket beneath.
  tcp::socket& next_layer() {
    if (auto* p = std::get_if<tls_ws>(&ws_))
      return p->next_layer().next_layer();
    return std::get<plain_ws>(ws_).next_layer();
  }

  auto get_executor() {
    return next_layer().get_executor();
  }

  /// What every tool sets on a connected socket before `async_open`: no Nagle delay,
  /// the handshake timeout and no idle timeout or pings of Beast's own, the user
  /// agent, the largest message, binary or text frames.
  void configure(const stream_setup& setup) {
    boost::system::error_code ignored;
    next_layer().set_option(tcp::no_delay{true}, ignored);
    boost::beast::websocket::stream_base::timeout timeouts;
    timeouts.handshake_timeout = setup.handshake_timeout;
    timeouts.idle_timeout = boost::beast::websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    set_option(timeouts);
    set_option(boost::beast::websocket::stream_base::decorator(
      [agent = setup.user_agent](boost::beast::websocket::request_type& req) {
        req.set(boost::beast::http::field::user_agent, agent);
      }));
    read_message_max(setup.max_message_bytes);
    if (setup.binary)
      binary(true);
    else
      text(true);
  }

  /// Opens a stream API session on a connected, configured socket: the handshakes
  /// (`async_handshake` with `host` and `stream_api_path`), then `hello` (an encoded
  /// hello frame, kept alive by the caller until the handler runs), then the server's
  /// first message (its welcome or an error) read into `buffer`.
  /// `handler(error_code, const char* step)`: `step` names what failed ("WebSocket
  /// handshake", "sending hello", "waiting for welcome").
  template <class DynamicBuffer, class Handler>
  void async_open(std::string host, const std::string& hello, DynamicBuffer& buffer,
                  Handler&& handler) {
    async_handshake(
      std::move(host), stream_api_path,
      [this, &hello, &buffer,
       h = std::forward<Handler>(handler)](boost::system::error_code ec) mutable {
        if (ec)
          return h(ec, uses_tls() ? "TLS and WebSocket handshake" : "WebSocket handshake");
        async_write(boost::asio::buffer(hello),
                    [this, &buffer, h = std::move(h)](boost::system::error_code ec,
                                                      std::size_t) mutable {
                      if (ec)
                        return h(ec, "sending hello");
                      async_read(buffer, [h = std::move(h)](boost::system::error_code ec,
                                                            std::size_t) mutable {
                        h(ec, "waiting for welcome");
                      });
                    });
      });
  }

  template <class Option>
  void set_option(Option opt) {
    visit([&](auto& ws) { ws.set_option(std::move(opt)); }); // one branch runs
  }

  void read_message_max(std::size_t n) {
    visit([&](auto& ws) { ws.read_message_max(n); });
  }

  void binary(bool on) {
    visit([&](auto& ws) { ws.binary(on); });
  }

  void text(bool on) {
    visit([&](auto& ws) { ws.text(on); });
  }

  void auto_fragment(bool on) {
    visit([&](auto& ws) { ws.auto_fragment(on); });
  }

  void write_buffer_bytes(std::size_t n) {
    visit([&](auto& ws) { ws.write_buffer_bytes(n); });
  }

  bool got_text() const {
    return std::visit([](const auto& ws) { return ws.got_text(); }, ws_);
  }

  /// The handshakes on a connected socket: TLS (when chosen), then WebSocket with
  /// `host` (`HOST:PORT`) as the `Host` header and `target` as the path. The TLS
  /// handshake expects a certificate that names HOST; `handler(error_code)`.
  template <class Handler>
  void async_handshake(std::string host, std::string target, Handler&& handler) {
    if (auto* p = std::get_if<plain_ws>(&ws_))
      return p->async_handshake(host, target, std::forward<Handler>(handler));
    auto& ws = std::get<tls_ws>(ws_);
    auto* ssl = ws.next_layer().native_handle();
    if (auto err = expect_server_name(ssl, host_of(host)); !err.empty()) {
      // Reported through the handler, as any handshake failure.
      return boost::asio::post(get_executor(),
                               [h = std::forward<Handler>(handler)]() mutable {
                                 h(boost::asio::error::invalid_argument);
                               });
    }
    ws.next_layer().async_handshake(
      boost::asio::ssl::stream_base::client,
      [this, host = std::move(host), target = std::move(target), ssl,
       h = std::forward<Handler>(handler)](boost::system::error_code ec) mutable {
        if (ec)
          return h(explain_handshake_error(ec, ssl));
        std::get<tls_ws>(ws_).async_handshake(host, target, std::move(h));
      });
  }

  template <class Buffers, class Handler>
  void async_write(const Buffers& buffers, Handler&& handler) {
    if (auto* p = std::get_if<plain_ws>(&ws_))
      return p->async_write(buffers, std::forward<Handler>(handler));
    std::get<tls_ws>(ws_).async_write(buffers, std::forward<Handler>(handler));
  }

  template <class DynamicBuffer, class Handler>
  void async_read(DynamicBuffer& buffer, Handler&& handler) {
    if (auto* p = std::get_if<plain_ws>(&ws_))
      return p->async_read(buffer, std::forward<Handler>(handler));
    std::get<tls_ws>(ws_).async_read(buffer, std::forward<Handler>(handler));
  }

  template <class Handler>
  void async_close(const boost::beast::websocket::close_reason& reason, Handler&& handler) {
    if (auto* p = std::get_if<plain_ws>(&ws_))
      return p->async_close(reason, std::forward<Handler>(handler));
    std::get<tls_ws>(ws_).async_close(reason, std::forward<Handler>(handler));
  }

private:
  template <class F>
  void visit(F&& f) {
    if (auto* p = std::get_if<plain_ws>(&ws_))
      return f(*p);
    f(std::get<tls_ws>(ws_));
  }

  /// HOST of `HOST:PORT` or `[IPV6]:PORT`.
  static std::string host_of(std::string_view host_header) {
    if (!host_header.empty() && host_header.front() == '[') {
      auto close = host_header.find(']');
      return std::string{host_header.substr(1, close == std::string_view::npos
                                                  ? std::string_view::npos
                                                  : close - 1)};
    }
    return std::string{host_header.substr(0, host_header.rfind(':'))};
  }

  std::variant<plain_ws, tls_ws> ws_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
};

} // namespace tether::tools
