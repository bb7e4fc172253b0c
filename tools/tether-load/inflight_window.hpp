#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace tether::tools::load {

/// The batches of one connection that were sent and not yet answered (by an ack or an
/// error frame), bounded by a fixed capacity. Answers may arrive in any order; lookups
/// are a linear scan, cheap for the small windows used (at most 1024 entries).
/// Thread safety: none; owned by one session.
class inflight_window {
public:
  using clock = std::chrono::steady_clock;

  /// One outstanding batch.
  struct entry {
    std::uint64_t sequence = 0;
    /// When the batch was sent or, in open loop, scheduled: its latency counts from here.
    clock::time_point sent;
    std::uint32_t samples = 0;
  };

  /// Creates an empty window holding at most `capacity` (at least 1) batches.
  explicit inflight_window(std::size_t capacity);

  /// Lowers or raises the capacity; entries already held are kept even above it.
  void capacity(std::size_t value);

  std::size_t capacity() const noexcept {
    return capacity_;
  }

  std::size_t size() const noexcept {
    return entries_.size();
  }

  bool empty() const noexcept {
    return entries_.empty();
  }

  /// True when no further batch may be sent.
  bool full() const noexcept {
    return entries_.size() >= capacity_;
  }

  /// Adds a batch. Precondition: `!full()`; sequences are unique.
  void push(const entry& e);

  /// Removes and returns the batch with `sequence`, if outstanding.
  std::optional<entry> take(std::uint64_t sequence);

  /// The batch with `sequence`, if outstanding (valid until the next change).
  const entry* find(std::uint64_t sequence) const;

  /// Sum of the samples of the outstanding batches.
  std::uint64_t samples() const noexcept;

private:
  std::size_t capacity_;
  std::vector<entry> entries_;
};

} // namespace tether::tools::load
