#pragma once

#include "tether-load/nats/baseline_aggregator.hpp"
#include "tether-load/run_context.hpp"

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace tether::tools::nats {

/// Counters of the consumer.
struct consumer_counters {
  std::uint64_t messages = 0;        ///< messages applied (or refused) and acknowledged
  std::uint64_t samples_applied = 0; ///< samples newly applied
  std::uint64_t samples_late = 0;
  std::uint64_t duplicates = 0;      ///< messages that were applied before
  std::uint64_t errors = 0;          ///< messages refused, fetch and ack failures
  std::uint64_t reconnects = 0;      ///< times libnats reconnected the connection
  /// CPU seconds of the consumer's thread and of the threads its connection started
  /// (threads libnats starts on a reconnect are not counted).
  double cpu_seconds = 0.0;
};

/// The aggregating side of the baseline: one durable consumer with explicit acks, push
/// (the server sends up to `16 * --fetch` unacknowledged messages) or pull (fetches up to
/// `--fetch` messages per request), that applies each message to its
/// `baseline_aggregator` as a node applies a write (producer id from the
/// `Tether-Producer` header) and then acknowledges it. With a visibility tracker it
/// reports the tracked outputs' running counts after every message it applied, stamped
/// with that moment: what a reader of this consumer's state would see.
///
/// Thread safety: `run` is the body of the consumer's own thread; `drain`, `abort` and
/// the progress accessors may be called from any thread; `counters` after `run`
/// returned.
class nats_consumer {
public:
  using clock = std::chrono::steady_clock;

  /// `pull`: a pull consumer fetching `fetch` messages at a time; otherwise a push
  /// consumer with at most `16 * fetch` messages unacknowledged.
  nats_consumer(load::run_context& ctx, aggregator_config cfg, std::uint32_t fetch, bool pull);
  ~nats_consumer();

  nats_consumer(const nats_consumer&) = delete;
  nats_consumer& operator=(const nats_consumer&) = delete;

  /// Connects and creates the durable consumer `durable` on `stream` (subjects
  /// `tether.load.>`), which delivers a message again when it is not acknowledged within
  /// `ack_wait`. Returns an empty string on success.
  std::string connect(const std::vector<std::string>& urls, const std::string& stream,
                      const std::string& durable, std::chrono::milliseconds ack_wait);

  /// The URL of the server the consumer's connection is on now (empty if none).
  std::string connected_url() const;

  /// Applies messages until `abort`, or after `drain` once it has applied `expected`
  /// messages and every tracked update is visible, or at the drain deadline.
  void run();

  /// The producers are done and JetStream stored `expected` messages: finish once they
  /// are applied, at the latest at `deadline`.
  void drain(std::uint64_t expected, clock::time_point deadline);

  void abort();

  bool finished() const noexcept {
    return finished_.load(std::memory_order_acquire);
  }

  /// Messages handled so far (for progress lines).
  std::uint64_t messages() const noexcept {
    return messages_.load(std::memory_order_relaxed);
  }

  /// Samples applied so far (for progress lines).
  std::uint64_t samples_applied() const noexcept {
    return applied_.load(std::memory_order_relaxed);
  }

  const consumer_counters& counters() const noexcept {
    return counters_;
  }

  /// When the last message was applied.
  clock::time_point last_apply() const noexcept {
    return last_apply_;
  }

  /// Tracked outputs that never existed in the consumer's state.
  std::uint64_t missing_keys() const noexcept;

  /// Output series in the consumer's state.
  std::uint64_t series() const noexcept {
    return aggregator_.series_count();
  }

private:
  static void on_reconnected(natsConnection* nc, void* closure);
  void handle(natsMsg* msg);
  void observe(clock::time_point now);
  bool done(clock::time_point now);
  void disconnect();

  load::run_context& ctx_;
  baseline_aggregator aggregator_;
  std::uint32_t fetch_;
  bool pull_;
  natsConnection* conn_ = nullptr;
  jsCtx* js_ = nullptr;
  natsSubscription* sub_ = nullptr;
  std::vector<long> conn_threads_; ///< threads the connection started
  std::vector<std::string> keys_;  ///< the tracked outputs' keys, by slot
  std::vector<bool> found_;        ///< whether each tracked output appeared
  consumer_counters counters_;
  clock::time_point last_apply_{};
  std::atomic<std::uint64_t> messages_{0};
  std::atomic<std::uint64_t> applied_{0};
  std::atomic<std::uint64_t> reconnects_{0};
  std::mutex mutex_; ///< guards the drain state
  bool draining_ = false;
  bool abort_ = false;
  std::uint64_t expected_ = 0;
  clock::time_point deadline_{};
  std::atomic<bool> finished_{false};
};

} // namespace tether::tools::nats
