#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tether::tools::load {

/// The frames of one connection's unanswered batches and which of them to send again,
/// as docs/protocol.md section 6 asks of a client: a batch answered by a retryable error
/// (UNAVAILABLE; for the broker baseline a publish ack that timed out) is sent again,
/// unchanged under its sequence, after a backoff; after a lost connection every
/// unanswered batch is sent again on the new one. Batches go out again in sequence order:
/// the lowest waiting sequence goes first, and the others wait behind it.
///
/// Frames are copied into slots that are reused once their batch is answered, so the
/// steady state does not allocate.
/// Thread safety: none; owned by one connection.
class resend_buffer {
public:
  using clock = std::chrono::steady_clock;

  /// First backoff after a retryable error, and the bound it doubles up to.
  static constexpr std::chrono::milliseconds first_backoff{10};
  static constexpr std::chrono::milliseconds max_backoff{500};

  /// `first_backoff * 2^attempts`, at most `max_backoff`.
  static std::chrono::milliseconds backoff(std::uint32_t attempts);

  /// Keeps a copy of the frame of `sequence`, just sent.
  void keep(std::uint64_t sequence, std::string_view frame);

  /// `sequence` is answered for good (ack, final error): its frame is dropped and it is
  /// not sent again.
  void release(std::uint64_t sequence);

  /// Sends `sequence` again at `due`: one more attempt. False if its frame is not kept.
  bool schedule(std::uint64_t sequence, clock::time_point due);

  /// Sends every kept frame again from `now` (the connection was lost): attempts count
  /// up as for `schedule`.
  void schedule_all(clock::time_point now);

  /// A frame to send now.
  struct due_frame {
    std::uint64_t sequence = 0;
    /// Valid until the next `keep` (which may reuse or move the slots).
    std::string_view frame;
  };

  /// The lowest waiting sequence, taken off the queue, if it is due at `now`. Otherwise
  /// nothing, and `next_due` is set to its due time (or to `clock::time_point::max()`
  /// when nothing waits).
  std::optional<due_frame> pop_due(clock::time_point now, clock::time_point& next_due);

  /// Whether a batch waits to be sent again.
  bool waiting() const noexcept;

  /// Times `sequence` was scheduled again (0 if never or not kept).
  std::uint32_t attempts(std::uint64_t sequence) const;

  /// Frames kept.
  std::size_t size() const noexcept;

private:
  struct slot {
    std::uint64_t sequence = 0; ///< 0: free
    std::string frame;
    std::uint32_t attempts = 0;
    bool waiting = false;
    clock::time_point due{};
  };

  slot* find(std::uint64_t sequence);
  const slot* find(std::uint64_t sequence) const;
  slot* find_free();

  std::vector<slot> slots_;
};

} // namespace tether::tools::load
