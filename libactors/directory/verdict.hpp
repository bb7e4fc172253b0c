#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tether/assignment.hpp"

namespace tether::directory {

/// The failure detector's evidence and verdict, as the directory's controller keeps
/// it: each member reports whom it suspects (supervision/, by missed heartbeats),
/// and a member is failed once a majority of the other up members suspects it.
/// Pure: the caller passes the clock; the controller acts on the verdict.
class suspicion_board {
public:
  /// Reports older than `ttl_ms` no longer count.
  explicit suspicion_board(int64_t ttl_ms) : ttl_ms_(ttl_ms) {
  }

  /// `reporter` suspects `names` as of `now_ms` (its previous report is replaced;
  /// an empty list withdraws it).
  void report(const std::string& reporter, std::vector<std::string> names, int64_t now_ms);

  /// Forgets every suspicion of `name`: it came back as a new process.
  void clear(const std::string& name);

  /// Whether any report names anyone.
  bool any() const;

  /// The members of `t` (indices) that are up and that a majority of the other up
  /// members suspect by a fresh report. A member's report about itself does not
  /// count, nor does the report of a member `t` has down or does not know. With no
  /// other up member, nobody is failed.
  std::vector<int32_t> failed(const assignment_table& t, int64_t now_ms) const;

  /// Whether a fresh report names a member `t` has up: a verdict may be near, and no
  /// move should start from or to a node about to be declared failed.
  bool pending(const assignment_table& t, int64_t now_ms) const;

private:
  bool fresh(int64_t received, int64_t now_ms) const {
    return now_ms - received <= ttl_ms_;
  }

  struct entry {
    std::vector<std::string> names;
    int64_t received = 0;
  };

  int64_t ttl_ms_;
  std::map<std::string, entry> reports_;
};

/// The slices of `t` whose primary is a down member and which have an up follower:
/// the elections a failure report or a restart left unresolved.
std::vector<uint32_t> orphaned_slices(const assignment_table& t);

} // namespace tether::directory
