#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/actor.hpp>

#include "series/dedup_window.hpp"
#include "series/series_state.hpp"

namespace tether::series {

/// One series of a slice snapshot: its key and its whole state, open windows with
/// their sketches, cumulative inputs and the latest closed window included.
struct series_snapshot {
  std::string key;
  series_state state;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, series_snapshot& x) {
  return f(x.key, x.state);
}

/// One producer's dedup window in a slice snapshot.
struct producer_snapshot {
  std::string producer;
  dedup_window window;
  int64_t last_ms = 0; ///< the item time of the producer's latest write to the slice
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, producer_snapshot& x) {
  return f(x.producer, x.window, x.last_ms);
}

/// The subscribers of one key of the slice on the shard that took the snapshot.
struct subscription_snapshot {
  std::string key;
  std::vector<caf::actor> sinks;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, subscription_snapshot& x) {
  return f(x.key, x.sinks);
}

/// Where a replica stands in its slice's replication stream: the epoch of the
/// primary that produced the last item it applied (or the epoch its seed recorded)
/// and that item's sequence number. Sequence numbers grow by one per item across
/// epochs; positions compare as (epoch, seq), the epoch first.
struct stream_position {
  uint64_t epoch = 0;
  uint64_t seq = 0;

  friend bool operator==(const stream_position& x, const stream_position& y) {
    return x.epoch == y.epoch && x.seq == y.seq;
  }
  friend bool operator!=(const stream_position& x, const stream_position& y) {
    return !(x == y);
  }
  friend bool operator<(const stream_position& x, const stream_position& y) {
    return x.epoch < y.epoch || (x.epoch == y.epoch && x.seq < y.seq);
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stream_position& x) {
  return f(x.epoch, x.seq);
}

/// A window that the close mark at `seq` of a slice's stream closed: every series of
/// window length `window_ms` whose window at `start` was open.
struct window_mark {
  uint64_t seq = 0;
  uint32_t window_ms = 0;
  int64_t start = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, window_mark& x) {
  return f(x.seq, x.window_ms, x.start);
}

/// Everything a shard needs to take a slice over from another: the slice's series
/// with their whole state, its dedup table and the subscribers of its keys, at the
/// epoch the slice has at its new place. A value type that crosses nodes (its
/// inspect() is complete, sketches included); `slice_state::snapshot` takes one and
/// `slice_state::restore` builds a slice from one. Series come in the slice's
/// insertion order and producers sorted by name, so equal slices give equal bytes.
///
/// The same value seeds a follower replica. For a replicated slice it also carries
/// the stream position the state corresponds to, the highest sequence a write
/// quorum is known to have applied, and the close marks above that sequence: their
/// windows are closed in the state but may not have been emitted yet.
struct slice_snapshot {
  uint32_t slice = 0;
  uint64_t epoch = 0;
  std::vector<series_snapshot> series;
  std::vector<producer_snapshot> dedup;
  std::vector<subscription_snapshot> subscribers;
  stream_position position;
  uint64_t committed = 0;
  std::vector<window_mark> unconfirmed;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, slice_snapshot& x) {
  return f(x.slice, x.epoch, x.series, x.dedup, x.subscribers, x.position,
           x.committed, x.unconfirmed);
}

/// Why `snap` cannot be restored, or an empty string if it can: every series has a
/// known kind, a window length above zero, open windows in ascending order and
/// sketches only for open windows of a histogram, and no key or producer occurs
/// twice.
std::string check(const slice_snapshot& snap);

} // namespace tether::series
