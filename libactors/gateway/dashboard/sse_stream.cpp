#include "gateway/dashboard/sse_stream.hpp"

#include <atomic>
#include <chrono>
#include <deque>

#include <boost/asio/buffer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/ssl.hpp>

namespace tether::gateway::dashboard {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

namespace {

/// What a browser may send after its request before the stream is closed.
constexpr size_t max_read_bytes = 64 << 10;

const auto header = std::make_shared<const std::string>(
  "HTTP/1.1 200 OK\r\n"
  "Server: tetherd\r\n"
  "Content-Type: text/event-stream\r\n"
  "Cache-Control: no-store\r\n"
  "Connection: close\r\n"
  "\r\n"
  "retry: 1000\n\n");

const auto busy = std::make_shared<const std::string>(
  "HTTP/1.1 503 Service Unavailable\r\n"
  "Server: tetherd\r\n"
  "Content-Type: application/json\r\n"
  "Retry-After: 5\r\n"
  "Connection: close\r\n"
  "Content-Length: 90\r\n"
  "\r\n"
  "{\"error\":\"UNAVAILABLE\",\"message\":\"the node serves as many dashboard streams as it takes\"}\n");

/// The stream over one kind of connection. Messages are written through `Stream`
/// (TLS on a TLS port); what the browser sends is read from the socket beneath it
/// and dropped unread, so only the browser's going away matters, on either kind.
template <class Stream>
class basic_sse_stream final : public sse_stream,
                               public std::enable_shared_from_this<basic_sse_stream<Stream>> {
public:
  basic_sse_stream(Stream&& stream, std::shared_ptr<void> slot, size_t max_queue,
                   std::chrono::milliseconds write_timeout)
    : stream_(std::move(stream)), slot_(std::move(slot)), max_queue_(max_queue),
      write_timeout_(write_timeout) {
  }

  void start() override {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      self->push(header);
      self->do_read();
    });
  }

  void send(std::shared_ptr<const std::string> message) override {
    if (closed_)
      return;
    net::post(stream_.get_executor(), [self = this->shared_from_this(), message] {
      self->push(message);
    });
  }

  void refuse() override {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      self->push(busy);
      self->closed_ = true; // nothing after the refusal; closed once it is written
    });
  }

  void close() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] { self->shut(); });
  }

  bool closed() const noexcept override {
    return closed_.load();
  }

private:
  tcp::socket& socket() {
    return beast::get_lowest_layer(stream_).socket();
  }

  void push(std::shared_ptr<const std::string> message) {
    if (!socket().is_open())
      return;
    if (queue_.size() >= max_queue_)
      return shut(); // too slow: the browser reconnects and starts afresh
    queue_.push_back(std::move(message));
    if (!writing_)
      do_write();
  }

  void do_write() {
    if (queue_.empty()) {
      writing_ = false;
      if (closed_)
        shut();
      return;
    }
    writing_ = true;
    auto message = queue_.front();
    beast::get_lowest_layer(stream_).expires_after(write_timeout_);
    net::async_write(stream_, net::buffer(*message),
                     [self = this->shared_from_this(), message](beast::error_code ec,
                                                                std::size_t) {
                       if (ec || !self->socket().is_open())
                         return self->shut();
                       self->queue_.pop_front();
                       self->do_write();
                     });
  }

  void do_read() {
    socket().async_read_some(net::buffer(discard_), [self = this->shared_from_this()](
                                                      beast::error_code ec, std::size_t n) {
      self->read_bytes_ += n;
      if (ec || self->read_bytes_ > max_read_bytes)
        return self->shut();
      self->do_read();
    });
  }

  void shut() {
    closed_ = true;
    queue_.clear();
    if (!socket().is_open())
      return;
    beast::error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream_).close();
  }

  Stream stream_;
  std::shared_ptr<void> slot_;
  size_t max_queue_;
  std::chrono::milliseconds write_timeout_; ///< a write that takes longer closes
  std::deque<std::shared_ptr<const std::string>> queue_;
  bool writing_ = false;
  char discard_[512];
  size_t read_bytes_ = 0;
  std::atomic<bool> closed_{false};
};

} // namespace

sse_stream::~sse_stream() = default;

std::shared_ptr<sse_stream> make_sse_stream(plain_stream&& stream,
                                            std::shared_ptr<void> slot,
                                            size_t max_queue,
                                            std::chrono::milliseconds write_timeout) {
  return std::make_shared<basic_sse_stream<plain_stream>>(std::move(stream),
                                                          std::move(slot), max_queue,
                                                        write_timeout);
}

std::shared_ptr<sse_stream> make_sse_stream(tls_stream&& stream,
                                            std::shared_ptr<void> slot,
                                            size_t max_queue,
                                            std::chrono::milliseconds write_timeout) {
  return std::make_shared<basic_sse_stream<tls_stream>>(std::move(stream),
                                                        std::move(slot), max_queue,
                                                        write_timeout);
}

} // namespace tether::gateway::dashboard
