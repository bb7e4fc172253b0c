#pragma once

#include <cstdint>
#include <vector>

#include "replication/messages.hpp"
#include "series/slice_snapshot.hpp"

namespace tether::replication {

/// A follower replica's place in its slice's stream and the rules that keep it in
/// order: an item is applied only if it continues the replica's position and its
/// epoch is not below the highest epoch the replica knows (the fence); a seed is
/// installed only if it is not older than the fence and does not take the replica
/// back within one epoch. Also tracks the commit point the primary announced and
/// the close marks above it, whose windows a new primary must still emit.
///
/// Pure bookkeeping. Not thread-safe: owned by the shard actor hosting the replica.
struct follower_cursor {
  uint64_t fence = 0;              ///< highest epoch known for the slice
  series::stream_position last;    ///< position of the last item applied (or seed)
  uint64_t known_commit = 0;       ///< highest commit point announced
  std::vector<series::window_mark> unconfirmed; ///< close marks above it

  /// Whether `it` may be applied now; `table_epoch` is the epoch of the latest
  /// directory table for the slice (part of the fence).
  replication::ack_code admit(const replication::replica_item& it,
                         uint64_t table_epoch) const noexcept;

  /// Records `it` as applied (after `admit` said ok).
  void advance(const replication::replica_item& it);

  /// Whether a seed at `epoch` and `pos` may replace this replica.
  replication::ack_code admit_seed(uint64_t epoch, series::stream_position pos,
                              uint64_t table_epoch) const noexcept;

  /// Starts over from a seed.
  void reset(const series::slice_snapshot& seed);

  /// The primary says a write quorum applied everything up to `seq`.
  void commit(uint64_t seq);

  /// What the replica answers about itself.
  replication::replica_ack ack(uint32_t slice) const noexcept {
    return replication::replica_ack{slice, replication::ack_code::ok, last.epoch, last.seq, 0};
  }
};

} // namespace tether::replication
