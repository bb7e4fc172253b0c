#include "outputs/window_order.hpp"

#include <algorithm>

#include "keys/slicing.hpp"

namespace tether::outputs {

void window_order::sweep(int64_t now_ms) {
  if (now_ms < next_sweep_)
    return;
  auto cut = now_ms - horizon_ms_;
  for (auto i = last_end_.begin(); i != last_end_.end();)
    if (i->second <= cut)
      i = last_end_.erase(i);
    else
      ++i;
  next_sweep_ = now_ms + horizon_ms_ / 2;
}

size_t window_order::drop(std::vector<series_view>& views, int64_t now_ms,
                          bool keep_equal) {
  sweep(now_ms);
  auto before = views.size();
  auto stale = [this, keep_equal](const series_view& v) {
    auto [i, fresh] = last_end_.try_emplace(keys::key_hash(v.key), v.window.end_ms);
    if (fresh)
      return false;
    if (v.window.end_ms < i->second || (!keep_equal && v.window.end_ms == i->second))
      return true;
    i->second = v.window.end_ms;
    return false;
  };
  views.erase(std::remove_if(views.begin(), views.end(), stale), views.end());
  return before - views.size();
}

size_t window_order::filter(std::vector<series_view>& views, int64_t now_ms) {
  return drop(views, now_ms, false);
}

size_t window_order::filter_snapshot(std::vector<series_view>& views, int64_t now_ms) {
  return drop(views, now_ms, true);
}

} // namespace tether::outputs
