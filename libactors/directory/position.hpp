#pragma once

#include <cstdint>

#include <caf/atom.hpp>

// The directory's election asks the replicas of a slice where they stand; these are
// its question and a replica's answer. Not part of the public API: only the
// directory's controller, the supervisor and the shard speak it.

namespace tether::directory {

/// Asks a node (its supervisor) or a shard where its replicas of some slices stand:
/// `(position_atom, std::vector<uint32_t> slices)` -> `std::vector<replica_position>`.
/// The directory's election adds `std::vector<uint64_t> fences` (one per slice, the
/// epoch the election will commit): a replica that answers refuses, from then on,
/// items and seeds below that epoch, so an old primary that is still alive cannot
/// complete a write quorum with it while the election runs.
using position_atom = caf::atom_constant<caf::atom("tt_pos")>;

/// One slice's replica on a node, as the directory's election reads it. A slice the
/// node holds no state for answers `seeded == false` with epoch and seq 0 (and
/// `primary == true` if the latest table names the node its primary: promoted
/// without a replica, it refuses writes).
struct replica_position {
  uint32_t slice = 0;
  uint64_t epoch = 0; ///< epoch of the primary that produced the last applied item
  uint64_t seq = 0;   ///< sequence number of that item
  bool primary = false;
  bool seeded = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replica_position& x) {
  return f(x.slice, x.epoch, x.seq, x.primary, x.seeded);
}

} // namespace tether::directory
