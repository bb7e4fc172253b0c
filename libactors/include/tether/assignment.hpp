#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tether {

/// A member of the cluster as the directory knows it.
struct member {
  std::string name;    ///< stable identity, e.g. "tether-1"
  std::string address; ///< gateway HOST:PORT
  bool up = true;      ///< false: failed (the directory declared it) or drained
  bool drained = false; ///< taken out by an operator; stays out until it joins again
  /// Which process of the member joined last (its start time in microseconds; 0:
  /// unknown). A join with another incarnation while the member is up means the
  /// process restarted before it was declared failed: its replicas are empty.
  uint64_t incarnation = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member& x) {
  return f(x.name, x.address, x.up, x.drained, x.incarnation);
}

/// One slice's replica set: indices into `assignment_table::members`.
struct slice_assignment {
  uint64_t epoch = 0;             ///< bumped on every primary change or move
  int32_t primary = -1;           ///< -1: no primary (unavailable)
  std::vector<int32_t> followers; ///< hot standbys, distinct from the primary
  /// An election found that no replica holds state (too many followers answered
  /// empty for any acknowledged write to exist): a primary without a replica
  /// starts the slice empty at this epoch instead of refusing writes.
  bool empty = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, slice_assignment& x) {
  return f(x.epoch, x.primary, x.followers, x.empty);
}

/// The directory's table: slice -> replica set + epoch, with a version that grows on
/// every change. Routers cache it; slices obey it.
struct assignment_table {
  uint64_t version = 0;
  uint32_t replication_factor = 1;
  std::vector<member> members;
  std::vector<slice_assignment> slices; ///< index = slice id

  /// Name of the slice's primary, or "" when it has none.
  const std::string& primary_name(uint32_t slice) const;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, assignment_table& x) {
  return f(x.version, x.replication_factor, x.members, x.slices);
}

} // namespace tether
