#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

namespace tether::gateway::dashboard {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

/// One browser's server-sent event stream (`GET /v1/dashboard/stream`). Runs on its
/// own strand; one write in flight and at most `max_queue` messages waiting: a
/// browser that falls further behind is disconnected (its EventSource reconnects
/// and gets a fresh picture), it is never buffered for without limit. A write that
/// does not finish within the write timeout closes the stream as well. Whatever the
/// browser sends after its request is read and dropped, up to a small bound.
/// Thread-safe: `send` and `close` may be called from any thread.
class sse_stream : public std::enable_shared_from_this<sse_stream> {
public:
  /// `slot` is the connection's place among the node's open connections.
  sse_stream(tcp::socket&& socket, std::shared_ptr<void> slot, size_t max_queue);

  /// Sends the response header and starts watching for the browser to go away.
  void start();

  /// Queues one message (a whole `event:`/`data:` block).
  void send(std::shared_ptr<const std::string> message);

  /// Answers 503 and closes: the node serves as many streams as it takes.
  void refuse();

  /// Closes the connection; no message is sent after.
  void close();

  /// Whether the stream ended (closed, failed or refused).
  bool closed() const noexcept {
    return closed_.load();
  }

private:
  void push(std::shared_ptr<const std::string> message);
  void do_write();
  void do_read();
  void shut();

  beast::tcp_stream stream_;
  std::shared_ptr<void> slot_;
  size_t max_queue_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  bool writing_ = false;
  char discard_[512];
  size_t read_bytes_ = 0;
  std::atomic<bool> closed_{false};
};

} // namespace tether::gateway::dashboard
