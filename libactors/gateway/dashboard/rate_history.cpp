#include "gateway/dashboard/rate_history.hpp"

#include <algorithm>

namespace tether::gateway::dashboard {

rate_history::rate_history(size_t points, size_t max_nodes)
  : points_(std::max<size_t>(points, 1)), max_nodes_(std::max<size_t>(max_nodes, 1)) {
}

const rate_history::point* rate_history::observe(const std::string& node,
                                                 int64_t unix_ms, uint64_t applied,
                                                 uint64_t windows) {
  auto i = tracks_.find(node);
  if (i == tracks_.end()) {
    if (tracks_.size() >= max_nodes_) {
      auto oldest = std::min_element(tracks_.begin(), tracks_.end(),
                                     [](auto& a, auto& b) {
                                       return a.second.at < b.second.at;
                                     });
      tracks_.erase(oldest);
    }
    tracks_[node] = track{unix_ms, applied, windows, {}};
    return nullptr;
  }
  auto& t = i->second;
  bool reset = applied < t.applied || windows < t.windows;
  auto dt = static_cast<double>(unix_ms - t.at) / 1000.0;
  const point* added = nullptr;
  if (!reset && dt > 0) {
    if (t.points.size() == points_)
      t.points.pop_front();
    t.points.push_back(point{unix_ms, static_cast<double>(applied - t.applied) / dt,
                             static_cast<double>(windows - t.windows) / dt});
    added = &t.points.back();
  }
  if (reset || dt > 0) {
    t.at = unix_ms;
    t.applied = applied;
    t.windows = windows;
  }
  return added;
}

} // namespace tether::gateway::dashboard
