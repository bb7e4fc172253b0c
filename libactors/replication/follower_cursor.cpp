#include "replication/follower_cursor.hpp"

#include <algorithm>

namespace tether::replication {

replication::ack_code follower_cursor::admit(const replication::replica_item& it,
                                        uint64_t table_epoch) const noexcept {
  if (it.epoch < std::max(fence, table_epoch))
    return replication::ack_code::stale;
  if (it.seq != last.seq + 1 || it.prev_epoch != last.epoch)
    return replication::ack_code::gap;
  return replication::ack_code::ok;
}

void follower_cursor::advance(const replication::replica_item& it) {
  fence = std::max(fence, it.epoch);
  last = series::stream_position{it.epoch, it.seq};
  if (it.kind == replication::item_kind::close && it.seq > known_commit)
    for (auto& w : it.windows)
      unconfirmed.push_back(series::window_mark{it.seq, w.window_ms, w.start});
}

replication::ack_code follower_cursor::admit_seed(uint64_t epoch,
                                             series::stream_position pos,
                                             uint64_t table_epoch) const noexcept {
  if (epoch < std::max(fence, table_epoch))
    return replication::ack_code::stale;
  // Within the epoch of its last item the stream had one primary: a replica that
  // holds more of it than the seed must not be taken back (the seed's primary lost
  // state it acknowledged, e.g. it restarted empty).
  if (pos < last && epoch <= last.epoch)
    return replication::ack_code::ahead;
  return replication::ack_code::ok;
}

void follower_cursor::reset(const series::slice_snapshot& seed) {
  fence = std::max(fence, seed.epoch);
  last = seed.position;
  known_commit = seed.committed;
  unconfirmed = seed.unconfirmed;
  commit(seed.committed);
}

void follower_cursor::commit(uint64_t seq) {
  known_commit = std::max(known_commit, seq);
  unconfirmed.erase(std::remove_if(unconfirmed.begin(), unconfirmed.end(),
                                   [this](const series::window_mark& m) {
                                     return m.seq <= known_commit;
                                   }),
                    unconfirmed.end());
}

} // namespace tether::replication
