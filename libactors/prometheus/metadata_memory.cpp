#include "prometheus/metadata_memory.hpp"

#include <algorithm>
#include <set>

namespace tether::prom {

metadata_memory::metadata_memory(size_t capacity)
  : capacity_(std::max<size_t>(capacity, 1)) {
}

void metadata_memory::remember(const write_request_view& request) {
  std::lock_guard<std::mutex> guard{mtx_};
  std::string_view previous;
  for (auto& m : request.metadata) {
    if (m.family == previous || m.type == metric_type::unknown || m.family.empty())
      continue; // sorted by family: only the first entry of each counts
    previous = m.family;
    auto i = types_.find(m.family);
    if (i != types_.end()) {
      order_.erase(i->second.second);
      i->second = {m.type, ++clock_};
    } else {
      if (types_.size() >= capacity_) {
        types_.erase(order_.begin()->second);
        order_.erase(order_.begin());
      }
      i = types_.emplace(std::string{m.family}, std::pair{m.type, ++clock_}).first;
    }
    order_.emplace(clock_, i->first);
  }
}

const std::pair<metric_type, uint64_t>*
metadata_memory::find(std::string_view family) const {
  auto i = types_.find(family);
  return i == types_.end() ? nullptr : &i->second;
}

bool metadata_memory::complete(const write_request_view& request,
                               write_request_view& out,
                               std::deque<std::string>& names) const {
  std::vector<family_metadata> added;
  std::set<std::string_view> seen;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& s : request.series) {
      if (request.metadata_for_series(s.name) != nullptr)
        continue;
      // The family is the name itself, or the name without a classic suffix.
      std::string_view family = s.name;
      auto* hit = find(family);
      for (std::string_view suffix : {"_bucket", "_sum", "_count", "_total"}) {
        if (hit != nullptr)
          break;
        if (s.name.size() > suffix.size()
            && s.name.substr(s.name.size() - suffix.size()) == suffix) {
          family = s.name.substr(0, s.name.size() - suffix.size());
          hit = find(family);
        }
      }
      if (hit == nullptr || !seen.insert(family).second)
        continue;
      names.emplace_back(family);
      added.push_back(family_metadata{names.back(), hit->first, {}, {}});
    }
  }
  if (added.empty())
    return false;
  out.series = request.series;
  out.metadata = request.metadata;
  out.metadata.insert(out.metadata.end(), added.begin(), added.end());
  std::stable_sort(out.metadata.begin(), out.metadata.end(),
                   [](const family_metadata& a, const family_metadata& b) {
                     return a.family < b.family;
                   });
  return true;
}

size_t metadata_memory::size() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return types_.size();
}

} // namespace tether::prom
