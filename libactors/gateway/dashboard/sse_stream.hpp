#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "gateway/tls_stream.hpp"

namespace tether::gateway::dashboard {

/// One browser's server-sent event stream (`GET /v1/dashboard/stream`). Runs on its
/// own strand; one write in flight and at most `max_queue` messages waiting: a
/// browser that falls further behind is disconnected (its EventSource reconnects
/// and gets a fresh picture), it is never buffered for without limit. A write that
/// does not finish within `write_timeout` closes the stream as well. Whatever the
/// browser sends after its request is read and dropped, up to a small bound.
/// Implemented for plain and TLS connections in sse_stream.cpp.
/// Thread-safe: `send` and `close` may be called from any thread.
class sse_stream {
public:
  virtual ~sse_stream();

  /// Sends the response header and starts watching for the browser to go away.
  virtual void start() = 0;

  /// Queues one message (a whole `event:`/`data:` block).
  virtual void send(std::shared_ptr<const std::string> message) = 0;

  /// Answers 503 and closes: the node serves as many streams as it takes.
  virtual void refuse() = 0;

  /// Closes the connection; no message is sent after.
  virtual void close() = 0;

  /// Whether the stream ended (closed, failed or refused).
  virtual bool closed() const noexcept = 0;
};

/// A stream over a connection that asked for it; `slot` is its place among the
/// node's open connections.
std::shared_ptr<sse_stream> make_sse_stream(plain_stream&& stream,
                                            std::shared_ptr<void> slot,
                                            size_t max_queue,
                                            std::chrono::milliseconds write_timeout);

/// The same over a TLS connection.
std::shared_ptr<sse_stream> make_sse_stream(tls_stream&& stream,
                                            std::shared_ptr<void> slot,
                                            size_t max_queue,
                                            std::chrono::milliseconds write_timeout);

} // namespace tether::gateway::dashboard
