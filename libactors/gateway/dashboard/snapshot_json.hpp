#pragma once

#include <optional>
#include <string>
#include <vector>

#include "gateway/backend.hpp"
#include "gateway/dashboard/rate_history.hpp"

namespace tether::gateway::dashboard {

/// What the dashboard shows of the cluster at one moment, as this node knows it.
struct cluster_view {
  std::string self;          ///< this node's name
  int64_t unix_ms = 0;
  bool clustered = false;
  assignment_table table;
  std::vector<peer_state> peers;
  std::optional<moves_state> moves; ///< the directory leader's latest answer
  std::string moves_error;          ///< why there is none, if it failed
};

// The messages of the dashboard's event stream; each is one server-sent event
// (`event: NAME`, `data: JSON`, blank line). docs/operations.md describes them.

/// `table`: the slice map, compact: members and per slice [primary, epoch,
/// followers] with member indices.
std::string table_event(const assignment_table& t);

/// `nodes`: every node's state, heartbeat, role, load and latest rates; the
/// directory leader and the moves in progress.
std::string nodes_event(const cluster_view& v, const rate_history& rates);

/// `history`: every node's rate points, for a page that just connected.
std::string history_event(const rate_history& rates);

/// `events`: cluster events from the node's event log.
std::string events_event(const std::vector<cluster_event>& xs);

} // namespace tether::gateway::dashboard
