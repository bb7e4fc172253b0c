#include "http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/version.hpp>

namespace tether::tools::ctl {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;

namespace {

/// One request/response exchange. Asynchronous operations against a private io_context
/// are used only so that a single deadline timer can bound every step; the caller sees a
/// blocking call.
class exchange {
public:
  exchange(const host_port& server, http_method method, std::string_view target,
           std::chrono::milliseconds timeout, const http_limits& limits,
           std::string_view token)
    : server_(server), timeout_(timeout), resolver_(ioc_), socket_(ioc_), deadline_(ioc_) {
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
      socket_.close(ignored);
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
    net::async_connect(socket_, endpoints,
                       [this](error_code ec, const tcp::endpoint&) { on_connect(ec); });
  }

  void on_connect(error_code ec) {
    if (ec)
      return failed(ec);
    step_ = "sending the request";
    http::async_write(socket_, request_, [this](error_code ec, size_t) { on_write(ec); });
  }

  void on_write(error_code ec) {
    if (ec)
      return failed(ec);
    step_ = "reading the response";
    http::async_read(socket_, buffer_, parser_, [this](error_code ec, size_t) { on_read(ec); });
  }

  void on_read(error_code ec) {
    if (ec)
      return failed(ec);
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    deadline_.cancel();
  }

  void failed(error_code ec) {
    if (timed_out_)
      error_ = step_ + ": timed out after " + std::to_string(timeout_.count()) + " ms";
    else
      error_ = step_ + ": " + ec.message();
    error_code ignored;
    socket_.close(ignored);
    deadline_.cancel();
  }

  const host_port& server_;
  std::chrono::milliseconds timeout_;
  net::io_context ioc_{1};
  tcp::resolver resolver_;
  tcp::socket socket_;
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
                                const http_limits& limits, std::string_view token) {
  exchange ex{server, method, target, timeout, limits, token};
  return ex.run();
}

} // namespace tether::tools::ctl
