#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "tether/admin.hpp"

namespace tether::events {

/// One thing that happened to the cluster as this node saw it (public: the
/// dashboard and embedders read it through `node_admin::events_since`).
using tether::cluster_event;

/// `12 slices (3, 7, 18, ... 1001)`: a count and the first and last slices of `v`
/// (sorted, without repeats), for the log lines that name many slices.
std::string slice_list(std::vector<uint32_t> v);

/// The level of an event kind in the log: WARN for what an operator must look at
/// (failed, lost, suspect, fence, failover, abandon, unresolved, refuse), INFO
/// otherwise.
std::string_view level_of(std::string_view kind);

/// Which events a node writes to its log (`tether.log-level`): `info` all of them,
/// `warn` only WARN ones, `off` none. Every event stays in the dashboard's ring.
enum class log_level { info, warn, off };

/// The level named `name` (`info`, `warn`, `off`), or false.
bool parse_log_level(std::string_view name, log_level& out);

/// `2026-12-05T23:55:18.123Z`: a log line's UTC time of `unix_ms`.
std::string log_time(int64_t unix_ms);

/// The node's log of cluster events: every event is written as one line to the
/// node's log (when an output stream is given) and kept in a ring of the latest
/// `capacity` events for the dashboard. Memory stays bounded whatever happens.
/// Thread-safe.
class event_log {
public:
  /// Keeps the latest `capacity` events (at least 1); writes each to `echo` unless
  /// it is null, as one line: `TIME LEVEL NODE KIND: TEXT`, e.g.
  /// `2026-12-05T23:55:18.123Z WARN tether-1 failover: 356 slices failed over ...`.
  event_log(std::string node, size_t capacity, std::ostream* echo,
            log_level level = log_level::info);

  /// Records an event now; returns its sequence number.
  uint64_t record(std::string kind, std::string text);

  /// The events still held whose sequence number is above `after`, oldest first.
  std::vector<cluster_event> since(uint64_t after) const;

  /// The sequence number of the latest event (0: none yet).
  uint64_t last_seq() const;

private:
  mutable std::mutex mtx_;
  std::string node_;
  size_t capacity_;
  std::ostream* echo_;
  log_level level_;
  uint64_t seq_ = 0;
  std::deque<cluster_event> ring_;
};

} // namespace tether::events
