#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace tether::tools::load {

/// The number of samples a run may still send, shared by all connections.
/// Thread safety: `reserve` and `exhausted` may be called concurrently.
class sample_budget {
public:
  /// A budget of `total` samples; 0 means unlimited.
  explicit sample_budget(std::uint64_t total) : unlimited_(total == 0), remaining_(total) {
    // nop
  }

  /// Takes up to `want` samples from the budget and returns how many were granted; 0 once
  /// the budget is spent. Grants never add up to more than the total.
  std::uint32_t reserve(std::uint32_t want) noexcept {
    if (unlimited_)
      return want;
    auto current = remaining_.load(std::memory_order_relaxed);
    for (;;) {
      if (current == 0)
        return 0;
      auto grant = std::min<std::uint64_t>(current, want);
      if (remaining_.compare_exchange_weak(current, current - grant,
                                           std::memory_order_relaxed))
        return static_cast<std::uint32_t>(grant);
    }
  }

  /// True when nothing is left to grant.
  bool exhausted() const noexcept {
    return !unlimited_ && remaining_.load(std::memory_order_relaxed) == 0;
  }

private:
  const bool unlimited_;
  std::atomic<std::uint64_t> remaining_;
};

} // namespace tether::tools::load
