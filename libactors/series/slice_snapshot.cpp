#include "series/slice_snapshot.hpp"

#include <algorithm>
#include <string_view>
#include <unordered_set>

namespace tether::series {

std::string check(const slice_snapshot& snap) {
  auto where = [&](const std::string& key) {
    return "slice " + std::to_string(snap.slice) + ", series " + key + ": ";
  };
  std::unordered_set<std::string_view> keys;
  keys.reserve(snap.series.size());
  for (auto& s : snap.series) {
    auto& st = s.state;
    if (st.kind != kind::counter && st.kind != kind::gauge && st.kind != kind::histogram)
      return where(s.key) + "unknown kind "
             + std::to_string(static_cast<int>(st.kind));
    if (st.window_ms == 0)
      return where(s.key) + "window length 0";
    auto ascending = std::adjacent_find(st.open.begin(), st.open.end(),
                                        [](const window_agg& a, const window_agg& b) {
                                          return a.start >= b.start;
                                        })
                     == st.open.end();
    if (!ascending)
      return where(s.key) + "open windows out of order";
    if (!keys.insert(s.key).second)
      return where(s.key) + "occurs twice";
  }
  std::unordered_set<std::string_view> producers;
  producers.reserve(snap.dedup.size());
  for (auto& p : snap.dedup)
    if (!producers.insert(p.producer).second)
      return "slice " + std::to_string(snap.slice) + ": producer '" + p.producer
             + "' occurs twice";
  return {};
}

} // namespace tether::series
