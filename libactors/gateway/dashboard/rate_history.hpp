#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>

namespace tether::gateway::dashboard {

/// Ingest and window-emission rates per node, turned from the counters nodes report
/// in their heartbeats into one point per observation, the latest `points` per node
/// and at most `max_nodes` nodes (the one heard from longest ago is forgotten first).
/// A counter that went backwards (a restarted node) starts over without a point.
/// Not thread-safe: one owner (the hub's strand).
class rate_history {
public:
  struct point {
    int64_t unix_ms = 0;
    double ingest = 0;  ///< samples applied per second
    double windows = 0; ///< windows closed per second
  };

  rate_history(size_t points, size_t max_nodes);

  /// Counters of `node` as seen at `unix_ms`; returns the point it added, if any.
  const point* observe(const std::string& node, int64_t unix_ms, uint64_t applied,
                       uint64_t windows);

  /// Every node's points, oldest first.
  template <class F>
  void for_each(F f) const {
    for (auto& [name, t] : tracks_)
      f(name, t.points);
  }

private:
  struct track {
    int64_t at = 0;
    uint64_t applied = 0;
    uint64_t windows = 0;
    std::deque<point> points;
  };

  size_t points_;
  size_t max_nodes_;
  std::map<std::string, track> tracks_;
};

} // namespace tether::gateway::dashboard
