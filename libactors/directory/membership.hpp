#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tether/assignment.hpp"

namespace tether::directory {

/// What the directory does with a member's join, decided from the current table.
/// The controller carries it out (controller.cpp, `on_join`).
struct join_decision {
  enum class step {
    /// The table is empty and directory members are still missing (`missing`
    /// names them): answer UNAVAILABLE; the joiner asks again.
    wait,
    /// The table is empty and every directory member joined: propose `next`, the
    /// first table.
    form,
    /// The member is up at this address in this process: nothing changes; answer
    /// the table's version.
    known,
    /// A new process under a known name (another incarnation): its replicas are
    /// empty; the controller re-joins member `member` (elections for what it led).
    restarted,
    /// Propose `next` (the member added, or marked up again at its new address),
    /// then rebalance. With `clear_suspicions`, forget the suspicions of the
    /// process that failed.
    propose,
  };
  step what = step::known;
  std::string missing;
  assignment_table next;
  int32_t member = -1;
  bool clear_suspicions = false;
};

/// Decides member `m`'s join against table `t`. `joined` holds the members that
/// asked to join while the table is empty (`m` counts as joined either way). A member back from a
/// partition or a pause leads what it still leads at `election_epoch`, not below
/// the fence an unresolved election may have set on its followers. Pure.
join_decision decide_join(const assignment_table& t, const member& m,
                          const std::map<std::string, member>& joined,
                          const std::vector<std::string>& directory_members,
                          uint32_t slice_count, uint32_t replication_factor);

} // namespace tether::directory
