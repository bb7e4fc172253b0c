#pragma once

#include <chrono>
#include <cstdint>

namespace tether::tools::load {

/// When one connection sends its batches in open-loop mode (`--rate`).
///
/// The run as a whole sends one batch every `batch / rate` seconds: global slot `g` is due
/// at `start + g * batch / rate`. The slots are dealt round-robin over the connections, so
/// that connection `conn` of `connections` owns the slots `conn, conn + connections, ...`
/// and sends at `rate / connections` samples per second, offset from its neighbours by one
/// global slot (the connections do not all fire at once).
///
/// Times are computed from the slot number, not by adding up intervals, so that rounding
/// does not drift: the offset of slot `g` is `floor(g * batch * 1e9 / rate)` nanoseconds,
/// exact for every valid input. Offsets saturate at `max_offset`.
/// Thread safety: immutable after construction.
class send_schedule {
public:
  using clock = std::chrono::steady_clock;

  /// Largest accepted `rate` in samples per second (keeps the arithmetic exact).
  static constexpr std::uint64_t max_rate = 1'000'000'000;

  /// Offsets never exceed this (about 31 years): "never" for a run of at most a day.
  static constexpr std::chrono::nanoseconds max_offset{1'000'000'000'000'000'000};

  /// A batch sent more than this after its scheduled time counts as late.
  static constexpr std::chrono::milliseconds late_threshold{1};

  /// An empty schedule (rate 0): `offset` is always `max_offset`.
  send_schedule() = default;

  /// The schedule of connection `conn` (< `connections`) for `rate` samples per second
  /// (1..`max_rate`) over all connections in batches of `batch` samples, starting at
  /// `start`. Out-of-range arguments are clamped into range.
  send_schedule(std::uint64_t rate, std::uint32_t batch, std::uint32_t connections,
                std::uint32_t conn, clock::time_point start);

  /// Time from the start to this connection's `n`-th batch (counting from 0).
  std::chrono::nanoseconds offset(std::uint64_t n) const noexcept;

  /// Scheduled time of this connection's `n`-th batch (counting from 0).
  clock::time_point at(std::uint64_t n) const noexcept {
    return start_ + offset(n);
  }

  clock::time_point start() const noexcept {
    return start_;
  }

  /// True when a batch due at `scheduled` and sent at `sent` was sent late.
  static bool is_late(clock::time_point scheduled, clock::time_point sent) noexcept {
    return sent - scheduled > late_threshold;
  }

  /// Offset in nanoseconds of global slot `slot`: `floor(slot * batch * 1e9 / rate)`,
  /// saturated at `max_offset`. Preconditions: `batch >= 1`, `1 <= rate <= max_rate`.
  static std::uint64_t slot_offset_ns(std::uint64_t slot, std::uint32_t batch,
                                      std::uint64_t rate) noexcept;

private:
  std::uint64_t rate_ = 0;
  std::uint32_t batch_ = 1;
  std::uint32_t connections_ = 1;
  std::uint32_t conn_ = 0;
  clock::time_point start_{};
};

} // namespace tether::tools::load
