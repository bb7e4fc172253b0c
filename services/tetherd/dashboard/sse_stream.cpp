#include "dashboard/sse_stream.hpp"

#include <chrono>

#include <boost/asio/buffer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

namespace tether::gateway::dashboard {

namespace {

/// A write that takes longer closes the stream.
constexpr auto write_timeout = std::chrono::seconds(10);

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

} // namespace

sse_stream::sse_stream(tcp::socket&& socket, std::shared_ptr<void> slot,
                       size_t max_queue)
  : stream_(std::move(socket)), slot_(std::move(slot)), max_queue_(max_queue) {
}

void sse_stream::start() {
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    self->push(header);
    self->do_read();
  });
}

void sse_stream::send(std::shared_ptr<const std::string> message) {
  if (closed_)
    return;
  net::post(stream_.get_executor(), [self = shared_from_this(), message] {
    self->push(message);
  });
}

void sse_stream::refuse() {
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    self->push(busy);
    self->closed_ = true; // nothing after the refusal; closed once it is written
  });
}

void sse_stream::close() {
  net::post(stream_.get_executor(), [self = shared_from_this()] { self->shut(); });
}

void sse_stream::push(std::shared_ptr<const std::string> message) {
  if (!stream_.socket().is_open())
    return;
  if (queue_.size() >= max_queue_)
    return shut(); // too slow: the browser reconnects and starts afresh
  queue_.push_back(std::move(message));
  if (!writing_)
    do_write();
}

void sse_stream::do_write() {
  if (queue_.empty()) {
    writing_ = false;
    if (closed_)
      shut();
    return;
  }
  writing_ = true;
  auto message = queue_.front();
  stream_.expires_after(write_timeout);
  net::async_write(stream_, net::buffer(*message),
                   [self = shared_from_this(), message](beast::error_code ec,
                                                        std::size_t) {
                     if (ec || !self->stream_.socket().is_open())
                       return self->shut();
                     self->queue_.pop_front();
                     self->do_write();
                   });
}

void sse_stream::do_read() {
  stream_.socket().async_read_some(
    net::buffer(discard_), [self = shared_from_this()](beast::error_code ec,
                                                       std::size_t n) {
      self->read_bytes_ += n;
      if (ec || self->read_bytes_ > max_read_bytes)
        return self->shut();
      self->do_read();
    });
}

void sse_stream::shut() {
  closed_ = true;
  queue_.clear();
  if (!stream_.socket().is_open())
    return;
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.close();
}

} // namespace tether::gateway::dashboard
