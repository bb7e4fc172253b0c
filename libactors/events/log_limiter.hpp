#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <vector>

namespace tether::events {

/// Rate limit for log lines that others can cause (clients on the gateway, peers on
/// the cluster port): at most `burst` lines in any stretch of time `period` long (a
/// sliding window: a line is let through once the `burst`-th line before it is a
/// period old); the lines dropped are counted and reported with the next line let
/// through. Thread-safe.
class log_limiter {
public:
  using clock = std::chrono::steady_clock;

  log_limiter(uint32_t burst, clock::duration period)
    : burst_(burst), period_(period), written_(burst) {
  }

  /// Whether a line may be written now. When it may, `suppressed` is set to the
  /// number of lines dropped since the last one written.
  bool admit(clock::time_point now, uint64_t& suppressed);

private:
  std::mutex mtx_;
  uint32_t burst_;
  clock::duration period_;
  /// When the last `burst_` lines let through were written (a ring; `count_` of
  /// them used, the oldest at `next_` once it is full).
  std::vector<clock::time_point> written_;
  size_t count_ = 0;
  size_t next_ = 0;
  uint64_t dropped_ = 0;
};

} // namespace tether::events
