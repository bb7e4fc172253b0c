#include "http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/version.hpp>

#include "common/tls_client.hpp"

namespace tether::tools::ctl {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;

namespace {

using tls_socket = boost::beast::ssl_stream<tcp::socket>;

/// One request/response exchange over `Stream`: a TCP socket, or TLS over one.
/// Asynchronous operations against a private io_context are used only so that a single
/// deadline timer can bound every step; the caller sees a blocking call.
template <class Stream>
class exchange {
public:
  static constexpr bool tls = std::is_same_v<Stream, tls_socket>;

  exchange(const host_port& server, http_method method, std::string_view target,
           std::chrono::milliseconds timeout, const http_limits& limits,
           std::string_view token, ssl::context* tls_context)
    : server_(server), timeout_(timeout), resolver_(ioc_), stream_(make_stream(tls_context)),
      deadline_(ioc_) {
    request_.method(method == http_method::post ? http::verb::post : http::verb::get);
    request_.target(boost::beast::string_view{target.data(), target.size()});
    request_.version(11);
    request_.set(http::field::host, server.to_string());
    request_.set(http::field::user_agent, "tetherctl/0.1");
    request_.set(http::field::accept, "application/json, text/plain");
    request_.set(http::field::connection, "close");
    if (!token.empty())
      request_.set(http::field::authorization, "Bearer " + std::string{token});
    if (method == http_method::post)
      request_.content_length(0);
    parser_.body_limit(limits.max_body_bytes);
    parser_.header_limit(limits.max_header_bytes);
  }

  result<http_response> run() {
    deadline_.expires_after(timeout_);
    deadline_.async_wait([this](error_code ec) {
      if (ec)
        return; // cancelled: the exchange finished first
      timed_out_ = true;
      error_code ignored;
      resolver_.cancel();
      socket().close(ignored);
    });
    step_ = "resolving " + server_.host;
    resolver_.async_resolve(server_.host, std::to_string(server_.port),
                            [this](error_code ec, tcp::resolver::results_type endpoints) {
                              on_resolve(ec, std::move(endpoints));
                            });
    ioc_.run();
    if (!error_.empty())
      return fail(error_);
    http_response out;
    auto& msg = parser_.get();
    out.status = msg.result_int();
    if (auto ct = msg.find(http::field::content_type); ct != msg.end())
      out.content_type = std::string{ct->value()};
    out.body = std::move(msg.body());
    return out;
  }

private:
  void on_resolve(error_code ec, tcp::resolver::results_type endpoints) {
    if (ec)
      return failed(ec);
    step_ = "connecting";
    net::async_connect(socket(), endpoints,
                       [this](error_code ec, const tcp::endpoint&) { on_connect(ec); });
  }

  void on_connect(error_code ec) {
    if (ec)
      return failed(ec);
    if constexpr (tls) {
      step_ = "TLS handshake";
      auto* ssl = stream_.native_handle();
      if (auto err = expect_server_name(ssl, server_.host); !err.empty()) {
        error_ = step_ + ": " + err;
        return close();
      }
      stream_.async_handshake(ssl::stream_base::client, [this, ssl](error_code ec) {
        if (ec)
          return failed(explain_handshake_error(ec, ssl));
        send_request();
      });
    } else {
      send_request();
    }
  }

  void send_request() {
    step_ = "sending the request";
    http::async_write(stream_, request_, [this](error_code ec, size_t) { on_write(ec); });
  }

  void on_write(error_code ec) {
    if (ec)
      return failed(ec);
    step_ = "reading the response";
    http::async_read(stream_, buffer_, parser_, [this](error_code ec, size_t) { on_read(ec); });
  }

  /// The response is complete (its length is known): the connection is closed without
  /// waiting for TLS's close_notify.
  void on_read(error_code ec) {
    if (ec)
      return failed(ec);
    close();
  }

  void close() {
    error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
    deadline_.cancel();
  }

  void failed(error_code ec) {
    if (timed_out_)
      error_ = step_ + ": timed out after " + std::to_string(timeout_.count()) + " ms";
    else
      error_ = step_ + ": " + ec.message();
    error_code ignored;
    socket().close(ignored);
    deadline_.cancel();
  }

  Stream make_stream(ssl::context* tls_context) {
    if constexpr (tls)
      return Stream{ioc_, *tls_context};
    else
      return Stream{ioc_};
  }

  tcp::socket& socket() {
    if constexpr (tls)
      return stream_.next_layer();
    else
      return stream_;
  }

  const host_port& server_;
  std::chrono::milliseconds timeout_;
  net::io_context ioc_{1};
  tcp::resolver resolver_;
  Stream stream_;
  net::steady_timer deadline_;
  http::request<http::empty_body> request_;
  http::response_parser<http::string_body> parser_;
  boost::beast::flat_buffer buffer_;
  std::string step_;
  std::string error_;
  bool timed_out_ = false;
};

} // namespace

result<http_response> http_get(const host_port& server, std::string_view target,
                               std::chrono::milliseconds timeout,
                               const http_limits& limits) {
  return http_send(server, http_method::get, target, timeout, limits);
}

result<http_response> http_send(const host_port& server, http_method method,
                                std::string_view target, std::chrono::milliseconds timeout,
                                const http_limits& limits, std::string_view token,
                                std::shared_ptr<ssl::context> tls) {
  if (server.tls) {
    if (!tls)
      return fail("no TLS context for " + server.to_url());
    exchange<tls_socket> ex{server, method, target, timeout, limits, token, tls.get()};
    return ex.run();
  }
  exchange<tcp::socket> ex{server, method, target, timeout, limits, token, nullptr};
  return ex.run();
}

} // namespace tether::tools::ctl
