#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace tether::gateway {

/// Rate limit for log lines that clients can cause: at most `burst` lines per
/// `period`; the lines dropped are counted and reported with the next line let
/// through. Thread-safe.
class log_limiter {
public:
  using clock = std::chrono::steady_clock;

  log_limiter(uint32_t burst, clock::duration period) : burst_(burst), period_(period) {
  }

  /// Whether a line may be written now. When it may, `suppressed` is set to the
  /// number of lines dropped since the last one written.
  bool admit(clock::time_point now, uint64_t& suppressed);

private:
  std::mutex mtx_;
  uint32_t burst_;
  clock::duration period_;
  clock::time_point period_start_{};
  uint32_t written_ = 0;
  uint64_t dropped_ = 0;
};

/// Routes libprotobuf's log lines (it logs, for example, every string field that
/// is not UTF-8 in a frame a client sent) through a log_limiter to standard error:
/// at most `burst` lines per `period` (`tether.client-log-burst`,
/// `tether.client-log-period-ms`). Call once, before serving; later calls change
/// nothing.
void limit_protobuf_logging(uint32_t burst, log_limiter::clock::duration period);

} // namespace tether::gateway
