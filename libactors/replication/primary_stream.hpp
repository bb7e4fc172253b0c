#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <caf/actor.hpp>

#include "replication/messages.hpp"
#include "replication/quorum.hpp"
#include "series/slice_snapshot.hpp"

namespace tether::replication {

/// The primary's side of one slice's replication stream: the items it numbered,
/// where each follower stands, the highest sequence a write quorum has applied
/// (the commit point), and the requests, reads and window emissions waiting for it.
///
/// A write quorum is a majority of the replica set, the primary included: with
/// `quorum` q, an item is committed once q - 1 followers acknowledged it (or at
/// once when q == 1). Followers acknowledge in order, so the commit point is a
/// prefix of the stream and never goes back. Only followers that acknowledged
/// something count: an ack is a fact about what a replica applied of this stream
/// (a follower checks each item against the position of the one before it).
///
/// The stream stops acknowledging when it is *fenced* (a replica or a table knows a
/// higher epoch), when fewer than q replicas can still be reached, and while a
/// *barrier* (a new primary's first item) is not committed: `writable()` is false
/// then, and requests waiting for the commit point are failed when it can no
/// longer be reached. Window emissions (`hold`) are not failed on a lost quorum:
/// they wait until the commit point passes them, or until the stream ends.
///
/// Pure bookkeeping: no actors, no clocks. Not thread-safe: owned by the shard
/// actor that leads the slice.
class primary_stream {
public:
  /// How the primary treats one follower.
  enum class link : uint8_t {
    idle,    ///< nothing is sent: unreachable, or waiting to retry a failed seed
    seeding, ///< a snapshot is on its way; items are sent after it
    live,    ///< items are streamed to it
  };

  struct follower {
    std::string name;     ///< member name
    caf::actor shard;     ///< its shard for this slice; invalid: unreachable
    link state = link::idle;
    uint64_t acked = 0;   ///< highest sequence it applied of this stream
    uint64_t seeded_through = 0; ///< position of the latest seed sent to it
    int64_t retry_at = 0; ///< an idle follower's next seed, node clock ms
    /// Seeds or batches that failed in a row since its last accepted seed: the
    /// next seed waits `seed_retry_delay` of it.
    uint32_t failures = 0;
    /// Which start of the link this is (the hosting shard numbers every new shard
    /// and every seed): a late failure of a message sent before is ignored.
    uint64_t generation = 0;
  };

  /// How long an idle follower waits for its next seed after `failures` failed
  /// attempts in a row (at least 1): 200 ms, doubling up to 1.6 s. A follower that
  /// cannot take a seed (unreachable, refusing) is not sent a slice's whole state
  /// every 200 ms; one that comes back on a new connection is seeded at once.
  static int64_t seed_retry_delay(uint32_t failures) noexcept {
    constexpr int64_t first_ms = 200;
    constexpr uint32_t max_doublings = 3;
    auto doublings = failures > 0 ? std::min(failures - 1, max_doublings) : 0;
    return first_ms << doublings;
  }

  /// Records a failed attempt to reach `f` at `now_ms`: it goes idle and is
  /// seeded again after `seed_retry_delay`.
  void retry_later(follower& f, int64_t now_ms) {
    f.retry_at = now_ms + seed_retry_delay(++f.failures);
    lost(f);
  }

  /// Called once with true when the commit point reaches the awaited sequence,
  /// or with false when the stream gives up on it.
  using callback = std::function<void(bool committed)>;

  primary_stream(uint32_t slice, uint64_t epoch, series::stream_position last,
                 uint64_t committed, size_t quorum);

  primary_stream(const primary_stream&) = delete;
  primary_stream& operator=(const primary_stream&) = delete;

  /// Fails everything still waiting.
  ~primary_stream();

  uint32_t slice() const noexcept {
    return slice_;
  }

  uint64_t epoch() const noexcept {
    return epoch_;
  }

  /// The epoch of items made from now on (a table's epoch for the slice).
  void set_epoch(uint64_t e) noexcept {
    epoch_ = e;
  }

  series::stream_position last() const noexcept {
    return last_;
  }

  uint64_t committed() const noexcept {
    return committed_;
  }

  size_t quorum() const noexcept {
    return quorum_;
  }

  std::vector<follower>& followers() noexcept {
    return followers_;
  }

  follower* find(const std::string& name);

  /// Sets the replica set: followers no longer named go, new names start idle and
  /// unreachable (the caller finds their shards). Re-evaluates the commit point.
  void set_followers(const std::vector<std::string>& names, size_t quorum);

  /// Fails the requests a lost quorum fails if the quorum is out of reach (call
  /// after the followers' links are set up).
  void check_quorum();

  /// Numbers the next item at the stream's epoch and appends it.
  replication::replica_item append(replication::item_kind kind, int64_t now_ms);

  /// Appends a barrier and withholds writes until it is committed.
  replication::replica_item append_barrier(int64_t now_ms);

  /// Whether writes may be applied now: not fenced, the barrier (if any)
  /// committed, and a quorum reachable.
  bool writable() const noexcept {
    return !fenced_ && committed_ >= barrier_ && can_reach_quorum();
  }

  /// Whether enough followers are being streamed to (or seeded) to make a quorum.
  bool can_reach_quorum() const noexcept;

  bool fenced() const noexcept {
    return fenced_;
  }

  /// The epoch that fenced the stream (0 if it is not fenced).
  uint64_t fenced_by() const noexcept {
    return fenced_by_;
  }

  /// A replica knows epoch `e` above the stream's: acknowledge nothing more until
  /// a table names this primary at `e` or later (then `unfence`).
  void fence(uint64_t e);

  void unfence() noexcept {
    fenced_ = false;
    fenced_by_ = 0;
  }

  /// `f` applied everything up to `seq` of this stream.
  void acked(follower& f, uint64_t seq);

  /// `f` cannot be streamed to any more (connection lost, no answer, refused):
  /// fails the waiting requests if the quorum is out of reach now.
  void lost(follower& f);

  /// Calls `cb(true)` once the commit point reaches `seq` (at once if it has). With
  /// `keep_on_loss`, a lost quorum does not fail it.
  void wait(uint64_t seq, bool keep_on_loss, callback cb);

  /// Withholds writes until the next `append_barrier` is committed.
  void hold_writes() noexcept {
    barrier_ = std::numeric_limits<uint64_t>::max();
  }

  /// Whether writes wait for a barrier that has not been appended yet.
  bool awaiting_barrier() const noexcept {
    return barrier_ == std::numeric_limits<uint64_t>::max();
  }

  /// Takes over close marks a previous primary made and nobody confirmed (from a
  /// follower replica or a snapshot).
  void adopt_marks(const std::vector<series::window_mark>& marks);

  /// Records the windows a close mark at `seq` closed, until it is committed.
  void hold_marks(uint64_t seq, const std::vector<replication::window_ref>& windows);

  /// The close marks above the commit point.
  const std::vector<series::window_mark>& unconfirmed() const noexcept {
    return marks_;
  }

  /// Whether the followers have not been told the latest commit point yet; clears
  /// the flag.
  bool take_commit_news() noexcept {
    auto news = told_ < committed_;
    told_ = committed_;
    return news;
  }

  /// Marks the latest commit point as told.
  void told_commit() noexcept {
    told_ = committed_;
  }

  /// Fails every waiting request (all, or only those a lost quorum fails).
  void fail(bool all);

private:
  void advance();

  struct waiter {
    uint64_t seq;
    bool keep_on_loss;
    callback cb;
  };

  uint32_t slice_;
  uint64_t epoch_;
  series::stream_position last_;
  uint64_t committed_;
  uint64_t told_ = 0;
  uint64_t barrier_ = 0;
  size_t quorum_;
  bool fenced_ = false;
  uint64_t fenced_by_ = 0;
  std::vector<follower> followers_;
  std::deque<waiter> waiters_; ///< ascending seq
  std::vector<series::window_mark> marks_;
};

} // namespace tether::replication
