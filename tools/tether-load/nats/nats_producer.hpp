#pragma once

#include "common/latency_histogram.hpp"
#include "tether-load/batch_builder.hpp"
#include "tether-load/inflight_window.hpp"
#include "tether-load/load_report.hpp"
#include "tether-load/resend_buffer.hpp"
#include "tether-load/run_context.hpp"
#include "tether-load/send_schedule.hpp"

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace tether::tools::nats {

/// One producer of the baseline: its own NATS connection and JetStream context, the
/// batches of tether-load's connection `index` (same builder, same ids, same bytes), one
/// message per batch on subject `tether.load.<index>`, published asynchronously with at
/// most `--inflight` unacknowledged. Closed loop and open loop work as in tether-load
/// (`load_session`); write-to-ack is the JetStream publish ack, counted from the send
/// (or scheduled) time.
///
/// Every message carries the headers `Nats-Msg-Id: PRODUCER:SEQUENCE` (JetStream's own
/// deduplication of republished messages) and `Tether-Producer: PRODUCER`, the
/// producer id under which the consumer deduplicates and applies the batch, as a node
/// does with the session's producer id.
///
/// Retries, as tether-load retries against a node (unless `--retry-timeout 0`): a
/// publish whose ack does not come within `--publish-timeout`, or that is refused with
/// no responders or "cluster not available / not leader" (a stream without a leader),
/// is published again, the same bytes under the same message id (`resend_buffer`: in
/// sequence order, after a backoff), so JetStream stores it once; a batch unanswered
/// `--retry-timeout` after its send fails. A lost connection is taken up by libnats
/// itself (reconnect to another server of the list, resubscribe, buffered publishes
/// flushed); what was in flight on it times out and goes again.
///
/// Thread safety: `run` is the body of the producer's own thread; `request_stop` and
/// `abort` may be called from any thread; acks arrive on libnats' threads. Results may
/// be read after `run` returned.
class nats_producer {
public:
  using clock = std::chrono::steady_clock;

  /// `publish_timeout`: how long a publish waits for its ack before it is retried.
  nats_producer(load::run_context& ctx, std::uint32_t index,
                std::chrono::milliseconds publish_timeout);
  ~nats_producer();

  nats_producer(const nats_producer&) = delete;
  nats_producer& operator=(const nats_producer&) = delete;

  /// Connects to `urls` (server `index % urls` first) and creates the JetStream context.
  /// Returns an empty string on success.
  std::string connect(const std::vector<std::string>& urls);

  /// Sends from `start` until stopped, the end of `--duration` or the sample budget, then
  /// waits for outstanding acks until every batch is answered, `abort`, or
  /// `drain_deadline()` passes; closes the connection.
  void run(clock::time_point start);

  /// Stops sending; `run` then waits up to the drain timeout for outstanding acks.
  void request_stop();

  /// Stops waiting for acks.
  void abort();

  /// `run` has returned.
  bool finished() const noexcept {
    return finished_.load(std::memory_order_acquire);
  }

  const load::load_counters& counters() const noexcept {
    return counters_;
  }

  const latency_histogram& latency() const noexcept {
    return latency_;
  }

  clock::time_point last_ack() const noexcept {
    return last_ack_;
  }

  /// When sending stopped (the stop request, the deadline or the budget).
  clock::time_point stopped_at() const noexcept {
    return stopped_at_;
  }

  /// The URL of the server the producer's connection is on now (empty if none).
  std::string connected_url() const;

  const std::string& producer_id() const noexcept {
    return producer_;
  }

private:
  static void on_reconnected(natsConnection* nc, void* closure);
  static void on_ack(jsCtx* js, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure);
  void handle_ack(natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae);
  bool publish(std::string_view bytes, std::uint64_t sequence);
  void disconnect();

  load::run_context& ctx_;
  const std::uint32_t index_;
  std::string producer_;
  std::string subject_;
  load::batch_builder builder_;
  natsConnection* conn_ = nullptr;
  jsCtx* js_ = nullptr;
  std::mutex mutex_;
  std::condition_variable cv_;
  const std::chrono::milliseconds publish_timeout_;
  load::inflight_window window_;
  load::resend_buffer resend_;
  /// Set when an ack handler scheduled a retry: wakes the producer thread.
  bool wake_ = false;
  load::load_counters counters_;
  latency_histogram latency_;
  clock::time_point last_ack_{};
  clock::time_point stopped_at_{};
  bool stop_ = false;
  bool abort_ = false;
  std::atomic<bool> finished_{false};
  /// Times libnats reconnected the connection (to another server, after a lost one).
  std::atomic<std::uint64_t> reconnects_{0};
};

} // namespace tether::tools::nats
