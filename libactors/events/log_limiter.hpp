#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace tether::events {

/// Rate limit for log lines that others can cause (clients on the gateway, peers on
/// the cluster port): at most `burst` lines per `period`; the lines dropped are
/// counted and reported with the next line let through. Thread-safe.
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

} // namespace tether::events
