#pragma once

#include <cstdint>

namespace tether::series {

/// Remembers which batch sequences of one producer a slice has applied: the highest
/// one and the `span` (128) below it; anything further below is too old to tell.
/// Part of the slice's replicated state: 32 bytes per producer per slice.
class dedup_window {
public:
  static constexpr uint64_t span = 128;

  enum class verdict : uint8_t { fresh, duplicate, too_old };

  verdict check(uint64_t seq) const noexcept;

  /// Marks `seq` applied. Precondition: check(seq) == fresh.
  void record(uint64_t seq) noexcept;

  uint64_t highest() const noexcept {
    return max_;
  }

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, dedup_window& x) {
    return f(x.max_, x.bits_[0], x.bits_[1]);
  }

private:
  bool test(uint64_t offset) const noexcept {
    return (bits_[offset / 64] >> (offset % 64)) & 1u;
  }

  uint64_t max_ = 0;      ///< highest applied sequence, 0 = none yet
  uint64_t bits_[2] = {}; ///< bit i set: sequence max_ - 1 - i was applied
};

} // namespace tether::series
