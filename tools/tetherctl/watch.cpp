#include "watch.hpp"

#include "tetherctl/commands.hpp"
#include "tetherctl/watch_render.hpp"
#include "common/ws_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include <csignal>
#include <ostream>
#include <unistd.h>

namespace tether::tools::ctl {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using boost::system::error_code;

namespace {

/// The `request_id` of the one subscription.
constexpr std::uint64_t subscribe_id = 1;

/// One watch connection; all handlers run on the caller's thread inside `run`.
class watch_session {
public:
  watch_session(const ctl_options& opts, std::shared_ptr<net::ssl::context> tls,
                std::ostream& out, std::ostream& err)
    : opts_(opts),
      out_(out),
      err_(err),
      resolver_(ioc_),
      ws_(ioc_, std::move(tls)),
      setup_timer_(ioc_),
      ping_timer_(ioc_),
      signals_(ioc_, SIGINT, SIGTERM) {
    // nop
  }

  int run() {
    signals_.async_wait([this](error_code ec, int) {
      if (!ec)
        stop(exit_ok);
    });
    setup_timer_.expires_after(opts_.timeout);
    setup_timer_.async_wait([this](error_code ec) {
      if (ec || subscribed_)
        return;
      give_up(exit_unreachable, step_ + ": timed out after "
                                  + std::to_string(opts_.timeout.count()) + " ms");
    });
    step_ = "resolving " + opts_.server.host;
    resolver_.async_resolve(opts_.server.host, std::to_string(opts_.server.port),
                            [this](error_code ec, tcp::resolver::results_type endpoints) {
                              if (ec)
                                return failed(ec);
                              step_ = "connecting";
                              net::async_connect(beast::get_lowest_layer(ws_), endpoints,
                                                 [this](error_code ec, const tcp::endpoint&) {
                                                   on_connect(ec);
                                                 });
                            });
    ioc_.run();
    return exit_code_;
  }

private:
  void on_connect(error_code ec) {
    if (ec)
      return failed(ec);
    ws_.configure({"tetherctl/0.1", opts_.timeout, watch_max_message_bytes, false});
    step_ = ws_.uses_tls() ? "TLS and WebSocket handshake, hello" : "WebSocket handshake, hello";
    hello_ = make_hello_json("tetherctl-watch-" + std::to_string(::getpid()), opts_.token);
    ws_.async_open(opts_.server.to_string(), hello_, buffer_,
                   [this](error_code ec, const char* step) {
                     if (ec) {
                       step_ = step;
                       return failed(ec);
                     }
                     step_ = "hello";
                     on_read(ec); // the welcome, or why the hello was refused
                   });
  }

  /// Writes one text message; writes are serialized through `outbox_`.
  void send(std::string text) {
    outbox_.push_back(std::move(text));
    if (outbox_.size() == 1)
      write_next();
  }

  void write_next() {
    if (closing_)
      return;
    ws_.async_write(net::buffer(outbox_.front()), [this](error_code ec, size_t) {
      if (ec)
        return failed(ec);
      outbox_.erase(outbox_.begin());
      if (!outbox_.empty())
        write_next();
      else if (close_pending_)
        start_close();
    });
  }

  void do_read() {
    ws_.async_read(buffer_, [this](error_code ec, size_t) { on_read(ec); });
  }

  void on_read(error_code ec) {
    if (ec) {
      if (closing_ || done_)
        return finish(exit_code_);
      return failed(ec);
    }
    auto text = beast::buffers_to_string(buffer_.cdata());
    buffer_.consume(buffer_.size());
    auto frame = parse_stream_frame(text);
    if (!frame) {
      err_ << "tetherctl: " << frame.error() << '\n';
    } else {
      handle(*frame, text);
    }
    if (!done_ && !closing_)
      do_read();
  }

  void handle(const stream_frame& frame, const std::string& text) {
    switch (frame.kind) {
      case stream_frame::type::welcome:
        step_ = "subscribe";
        send(make_subscribe_json(subscribe_id, opts_.args));
        break;
      case stream_frame::type::window_update:
        on_update(frame, text);
        break;
      case stream_frame::type::error: {
        auto message = render_stream_error(frame.body);
        if (opts_.json)
          out_ << text << std::endl;
        // Errors about the hello (request id 0 before subscribing) or the subscription end
        // the watch; others (a ping, say) are reported and ignored.
        if (!subscribed_ || request_id_of(frame.body) == subscribe_id)
          return give_up(exit_server_error, step_ + " rejected: " + message);
        err_ << "tetherctl: " << message << '\n';
        break;
      }
      default:
        break; // pongs and frames of later versions
    }
  }

  void on_update(const stream_frame& frame, const std::string& text) {
    if (request_id_of(frame.body) != subscribe_id)
      return;
    if (!subscribed_) {
      subscribed_ = true;
      setup_timer_.cancel();
      schedule_ping();
    }
    if (opts_.json) {
      out_ << text << std::endl;
    } else {
      auto rendered = render_window_update(frame.body);
      if (rendered)
        out_ << *rendered << std::endl;
      else
        err_ << "tetherctl: " << rendered.error() << '\n';
    }
    if (!is_initial_update(frame.body) && opts_.windows != 0 && ++windows_seen_ >= opts_.windows)
      stop(exit_ok);
  }

  void schedule_ping() {
    ping_timer_.expires_after(watch_ping_interval);
    ping_timer_.async_wait([this](error_code ec) {
      if (ec || closing_ || done_)
        return;
      send(make_ping_json(++ping_nonce_));
      schedule_ping();
    });
  }

  /// Ends the watch with a clean WebSocket close (after pending writes).
  void stop(int code) {
    if (closing_ || done_)
      return;
    exit_code_ = code;
    if (!subscribed_)
      return finish(code); // still setting up: nothing worth a closing handshake
    if (!outbox_.empty()) {
      close_pending_ = true;
      return;
    }
    start_close();
  }

  void start_close() {
    closing_ = true;
    ping_timer_.cancel();
    ws_.async_close(websocket::close_code::normal, [this](error_code) { finish(exit_code_); });
  }

  /// Ends the watch at once with a message on stderr.
  void give_up(int code, const std::string& message) {
    if (done_)
      return;
    err_ << "tetherctl: " << message << '\n';
    finish(code);
  }

  void failed(error_code ec) {
    if (done_)
      return;
    if (ec == net::error::operation_aborted && closing_)
      return finish(exit_code_);
    if (!subscribed_)
      return give_up(exit_unreachable,
                     "cannot reach " + opts_.server.to_string() + ": " + step_ + ": "
                       + ec.message());
    give_up(exit_server_error, "connection to " + opts_.server.to_string() + " lost: "
                                 + ec.message());
  }

  void finish(int code) {
    if (done_)
      return;
    done_ = true;
    exit_code_ = code;
    error_code ignored;
    setup_timer_.cancel();
    ping_timer_.cancel();
    signals_.cancel(ignored);
    resolver_.cancel();
    beast::get_lowest_layer(ws_).close(ignored);
  }

  const ctl_options& opts_;
  std::ostream& out_;
  std::ostream& err_;
  net::io_context ioc_{1};
  tcp::resolver resolver_;
  ws_client ws_;
  net::steady_timer setup_timer_;
  net::steady_timer ping_timer_;
  net::signal_set signals_;
  beast::flat_buffer buffer_;
  std::vector<std::string> outbox_;
  std::string hello_; ///< written by async_open
  std::string step_;
  std::uint64_t ping_nonce_ = 0;
  std::uint64_t windows_seen_ = 0;
  int exit_code_ = exit_ok;
  bool subscribed_ = false;
  bool closing_ = false;
  bool close_pending_ = false;
  bool done_ = false;
};

} // namespace

int run_watch(const ctl_options& opts, std::shared_ptr<boost::asio::ssl::context> tls,
              std::ostream& out, std::ostream& err) {
  watch_session session{opts, std::move(tls), out, err};
  return session.run();
}

} // namespace tether::tools::ctl
