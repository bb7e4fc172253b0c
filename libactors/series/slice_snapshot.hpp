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
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, producer_snapshot& x) {
  return f(x.producer, x.window);
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

/// Everything a shard needs to take a slice over from another: the slice's series
/// with their whole state, its dedup table and the subscribers of its keys, at the
/// epoch the slice has at its new place. A value type that crosses nodes (its
/// inspect() is complete, sketches included); `slice_state::snapshot` takes one and
/// `slice_state::restore` builds a slice from one. Series come in the slice's
/// insertion order and producers sorted by name, so equal slices give equal bytes.
struct slice_snapshot {
  uint32_t slice = 0;
  uint64_t epoch = 0;
  std::vector<series_snapshot> series;
  std::vector<producer_snapshot> dedup;
  std::vector<subscription_snapshot> subscribers;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, slice_snapshot& x) {
  return f(x.slice, x.epoch, x.series, x.dedup, x.subscribers);
}

/// Why `snap` cannot be restored, or an empty string if it can: every series has a
/// known kind, a window length above zero, open windows in ascending order and
/// sketches only for open windows of a histogram, and no key or producer occurs
/// twice.
std::string check(const slice_snapshot& snap);

} // namespace tether::series
