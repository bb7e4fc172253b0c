#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace tether::outputs {

/// Where a sender posts: the parts of an `http://` URL that a request needs.
struct http_endpoint {
  /// Host name or IP address; an IPv6 address without its brackets.
  std::string host;

  /// TCP port; 80 when the URL names none.
  uint16_t port = 80;

  /// Request target: the path (at least "/") and the query, if the URL has one.
  std::string target;

  /// The `Host` header value: `host:port`, an IPv6 address in brackets.
  std::string host_header() const;
};

/// Parses `http://HOST[:PORT][/PATH][?QUERY]`. The scheme is matched ignoring case;
/// HOST is a name of letters, digits, `-`, `_` and `.`, or an IPv6 address in
/// brackets; PORT is 1 to 65535. Refuses, explaining why in `error` and leaving
/// `out` untouched: any other scheme (`https` included: the sender speaks plain HTTP
/// only), user information (`user@`), a fragment, an empty host or port, and spaces
/// or control characters anywhere.
bool parse_http_endpoint(std::string_view url, http_endpoint& out, std::string& error);

/// Settings of a `remote_write_sender`. Each one is checked by
/// `remote_write_sender::make` against the bounds stated beside it.
struct remote_write_sender_options {
  /// Receiver URL, `http://HOST[:PORT]/PATH` (see `parse_http_endpoint`). Required.
  std::string endpoint;

  /// Batches that may wait to be sent, besides the one in flight. When the queue is
  /// full, `enqueue` drops the oldest waiting batch. Bounds: 1 to 1,000,000.
  size_t max_queue = 256;

  /// Further attempts for a batch after its first one fails with a retryable
  /// outcome (5xx, 429, network error, timeout). Bounds: 0 to 1,000.
  uint32_t max_retries = 10;

  /// Backoff before retry `n` (counting from 0) is drawn uniformly from
  /// [0, min(max_backoff, min_backoff * 2^n)] ("full jitter"). Bounds: 1 ms to 1 h.
  std::chrono::milliseconds min_backoff{100};

  /// Cap of the backoff. Bounds: min_backoff to 1 h.
  std::chrono::milliseconds max_backoff{10'000};

  /// Time one attempt may take, from resolving and connecting (when no connection
  /// is open) to the last byte of the response. Bounds: 1 ms to 1 h.
  std::chrono::milliseconds request_timeout{10'000};

  /// How long `stop()` keeps sending what is queued before it gives up on the rest.
  /// Bounds: 0 to 1 h.
  std::chrono::milliseconds drain_timeout{2'000};

  /// Largest response body read, in bytes. A larger body ends the connection; the
  /// status already read still decides the batch's fate. Bounds: 1 KiB to 64 MiB.
  size_t max_response_bytes = size_t{64} << 10;

  /// `User-Agent` of every request. Bounds: 1 to 256 printable ASCII characters.
  std::string user_agent = "tether/0.1";

  /// Seed of the backoff jitter generator; 0 seeds it from `std::random_device`.
  uint64_t jitter_seed = 0;
};

/// Counters of a sender since it was made. Every batch passed to `enqueue` ends up
/// in exactly one of `sent`, `dropped_queue_full`, `dropped_shutdown`,
/// `failed_after_retries` and `rejected_4xx`, or is still counted in `queue_depth`
/// or `in_flight`; so `enqueued` equals their sum.
struct remote_write_sender_stats {
  /// Calls of `enqueue`.
  uint64_t enqueued = 0;

  /// Batches answered with a 2xx status.
  uint64_t sent = 0;

  /// Batches evicted from a full queue to make room for a newer one.
  uint64_t dropped_queue_full = 0;

  /// Batches given up on by `stop()` (its drain time ran out) or enqueued after it.
  uint64_t dropped_shutdown = 0;

  /// Batches whose last allowed attempt still had a retryable outcome.
  uint64_t failed_after_retries = 0;

  /// Batches answered with a status that is neither 2xx, 5xx nor 429: the receiver
  /// refused the data (in practice a 4xx; a 3xx lands here too, as redirects are
  /// not followed) and sending it again would not help.
  uint64_t rejected_4xx = 0;

  /// Attempts after the first of a batch. A request resent at once because the
  /// receiver had closed an idle keep-alive connection is not a retry.
  uint64_t retries = 0;

  /// Batches waiting in the queue.
  size_t queue_depth = 0;

  /// 1 while the sender holds a batch it has not finished with, else 0.
  size_t in_flight = 0;

  /// The latest failure, e.g. `HTTP 503: overloaded` or
  /// `connecting to 10.0.0.1:9090: Connection refused`; empty if none yet.
  std::string last_error;
};

/// Sends Prometheus remote-write request bodies to one receiver over HTTP/1.1, from
/// a background thread, one batch at a time and in the order they were enqueued.
///
/// The sender owns its queue, thread and connection: a bounded queue that favours
/// fresh data, a keep-alive connection that is reopened after any failure, and the
/// remote-write 1.0 retry policy (retry 5xx, 429 and network failures with
/// exponential backoff; drop other refusals at once). Bodies are sent as given:
/// they must already be encoded and compressed (see `prom::write_encoder`).
///
/// Thread safety: `enqueue`, `stats`, `flush` and `stop` may be called from any
/// thread at any time; `start` once, from any thread. The destructor must not run
/// concurrently with another call.
class remote_write_sender {
public:
  /// Checks `opts` and creates a sender that is not yet running; returns nullptr
  /// and explains in `error` when an option is out of bounds.
  static std::unique_ptr<remote_write_sender> make(remote_write_sender_options opts,
                                                   std::string& error);

  /// Stops the sender (see `stop`).
  ~remote_write_sender();

  remote_write_sender(const remote_write_sender&) = delete;
  remote_write_sender& operator=(const remote_write_sender&) = delete;

  /// Starts the background thread. Returns false, doing nothing, if the sender was
  /// started or stopped before.
  bool start();

  /// Queues one encoded, compressed `WriteRequest` body for sending; never waits.
  /// Returns false when the body did not fit without loss: either the queue was full
  /// and its oldest batch was dropped to make room for this one, or the sender is
  /// stopped and this one was dropped. Batches enqueued before `start` wait for it.
  bool enqueue(std::string body);

  /// Waits until every batch enqueued so far has been finished with (sent, dropped,
  /// rejected or failed) or until `timeout` passes; returns whether it was the former.
  bool flush(std::chrono::milliseconds timeout);

  /// Sends what is queued for at most `drain_timeout`, then abandons the batch in
  /// flight and counts it and the rest of the queue as `dropped_shutdown`; joins the
  /// thread and closes the connection. Idempotent; a second caller waits until the
  /// first one is done.
  void stop();

  /// A consistent snapshot of the counters.
  remote_write_sender_stats stats() const;

  /// The receiver, as parsed from the options.
  const http_endpoint& endpoint() const noexcept;

  const remote_write_sender_options& options() const noexcept;

private:
  struct impl;

  explicit remote_write_sender(std::unique_ptr<impl> state);

  std::unique_ptr<impl> impl_;
};

} // namespace tether::outputs
