#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "directory/position.hpp"
#include "replication/messages.hpp"
#include "series/shard_write.hpp"
#include "series/slice_snapshot.hpp"
#include "tether/actors.hpp"
#include "tether/assignment.hpp"
#include "tether/types.hpp"

// The messages of the shard actor's interfaces (shard.hpp) that are not the write
// itself (series/shard_write.hpp) or the replication stream's
// (replication/messages.hpp).

namespace tether::series {

/// The election's question and a replica's answer are the directory's types
/// (directory/position.hpp): the directory does not depend on the shard.
using directory::position_atom;
using directory::replica_position;

// The replication stream's messages, as the shard's code names them.
using replication::ack_code;
using replication::commit_note;
using replication::item_kind;
using replication::near_ack;
using replication::near_ack_atom;
using replication::replica_ack;
using replication::replica_acks;
using replication::replica_batch;
using replication::replica_item;
using replication::window_ref;

/// An output key as routed to its shard for a read or a subscription.
struct key_route {
  std::string key;
  uint32_t slice = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, key_route& x) {
  return f(x.key, x.slice);
}

/// One slice as a shard reports it for /metrics.
struct slice_stat {
  uint32_t slice = 0;
  uint64_t epoch = 0;
  uint64_t series = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, slice_stat& x) {
  return f(x.slice, x.epoch, x.series);
}

/// What a shard reports for /metrics: every series with a closed window, and its
/// slices with their series counts.
struct shard_scrape {
  std::vector<series_view> series;
  std::vector<slice_stat> slices;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shard_scrape& x) {
  return f(x.series, x.slices);
}

} // namespace tether::series
