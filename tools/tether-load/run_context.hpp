#pragma once

#include "tether-load/activity_timeline.hpp"
#include "tether-load/load_options.hpp"
#include "tether-load/sample_budget.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace boost::asio::ssl {
class context;
}

namespace tether::tools::load {

class visibility_tracker;

/// State shared by all sessions of a run.
/// Thread safety: every member may be used from any session's strand concurrently.
class run_context {
public:
  run_context(const load_options& opts, std::string run_id);

  const load_options& opts;
  /// Random per-run part of the producer ids.
  const std::string run_id;
  /// Prefix of the messages printed on stderr.
  std::string program = "tether-load";
  /// The TLS client context when the servers are `wss://` ones; null for plain ones.
  std::shared_ptr<boost::asio::ssl::context> tls;
  /// The write-to-visible measurement, when `--visible-keys` is set: every session
  /// records each batch in it before sending. Null otherwise.
  visibility_tracker* tracker = nullptr;
  /// Samples left to send when `--samples` is given.
  sample_budget budget;
  /// Running totals for the progress line (relaxed; exact totals come from the sessions).
  std::atomic<std::uint64_t> samples_acked{0};
  std::atomic<std::uint64_t> batches_sent{0};
  std::atomic<std::uint64_t> batches_answered{0};
  std::atomic<std::uint64_t> errors{0};
  /// Acked samples over time (started when sending starts).
  activity_timeline acked;

  /// Marks the start of sending: batches sent before `start + opts.warmup` are not
  /// measured. Called once, before any session sends.
  void start_measuring(std::chrono::steady_clock::time_point start);

  /// Whether the ack latency of a batch sent at `sent` counts (it was sent after the
  /// warm-up).
  bool measured(std::chrono::steady_clock::time_point sent) const noexcept {
    return sent.time_since_epoch().count()
           >= measure_from_.load(std::memory_order_relaxed);
  }

  /// Counts an error and prints it on stderr unless `opts.max_printed_errors` were
  /// printed already (then one line announces that further errors are only counted).
  void report_error(const std::string& text);

  /// Prints what happened (a retry, a reconnect) on stderr without counting an error;
  /// after `opts.max_printed_errors` such lines, one line says that further ones are
  /// not printed.
  void note(const std::string& text);

  /// Prints a warning on stderr the first time it is called with a given `once` flag.
  void warn_once(std::atomic<bool>& once, const std::string& text);

  /// Set when a warning about the server's in-flight limit was printed.
  std::atomic<bool> inflight_warned{false};

private:
  /// steady_clock ticks from which batches are measured.
  std::atomic<std::chrono::steady_clock::rep> measure_from_{0};
  std::mutex print_mutex_;
  std::uint64_t printed_ = 0;
  std::uint64_t noted_ = 0;
};

} // namespace tether::tools::load
