#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tether/assignment.hpp"

namespace tether::events {

/// An event found by comparing two directory tables: kind and text, as recorded in
/// an `event_log`.
using table_event = std::pair<std::string, std::string>;

/// What changed from `before` to `after`, as an operator reads it: members that
/// joined, were declared failed, were drained or came back; and the slices whose
/// primary changed, one event per (old primary, new primary) pair with the number
/// of slices, called a failover when the old primary is no longer up and a move
/// otherwise. An empty `before` (no slices) yields only the first table's summary.
/// Pure: no clocks, no actors.
std::vector<table_event> table_changes(const assignment_table& before,
                                       const assignment_table& after);

} // namespace tether::events
