#include "series/slice_snapshot.hpp"

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
    auto open = st.open();
    size_t sketched = 0;
    for (size_t i = 0; i < open.size(); ++i) {
      if (i > 0 && open[i - 1].start >= open[i].start)
        return where(s.key) + "open windows out of order";
      sketched += st.sketch(open[i].start) != nullptr;
    }
    if (sketched != st.sketch_count() || (sketched > 0 && st.kind != kind::histogram))
      return where(s.key) + "sketches without an open histogram window";
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
