#include "outputs/stale_outputs.hpp"

namespace tether::outputs {

void stale_outputs::seen(const std::vector<series_view>& views) {
  for (auto& v : views) {
    auto i = latest_.find(v.key);
    if (i == latest_.end())
      latest_.emplace(v.key, v);
    else if (i->second.window.end_ms <= v.window.end_ms)
      i->second = v;
  }
}

std::vector<series_view> stale_outputs::expire(int64_t now_ms) {
  std::vector<series_view> out;
  for (auto i = latest_.begin(); i != latest_.end();) {
    if (i->second.window.end_ms < now_ms - staleness_ms_) {
      out.push_back(std::move(i->second));
      i = latest_.erase(i);
    } else {
      ++i;
    }
  }
  return out;
}

} // namespace tether::outputs
