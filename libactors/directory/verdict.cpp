#include "directory/verdict.hpp"

#include <algorithm>

#include "directory/placement.hpp"

namespace tether::directory {

void suspicion_board::report(const std::string& reporter, std::vector<std::string> names,
                             int64_t now_ms) {
  reports_[reporter] = entry{std::move(names), now_ms};
}

void suspicion_board::clear(const std::string& name) {
  for (auto& [_, r] : reports_)
    r.names.erase(std::remove(r.names.begin(), r.names.end(), name), r.names.end());
}

bool suspicion_board::any() const {
  for (auto& [_, r] : reports_)
    if (!r.names.empty())
      return true;
  return false;
}

std::vector<int32_t> suspicion_board::failed(const assignment_table& t,
                                             int64_t now_ms) const {
  std::vector<int32_t> out;
  size_t up = 0;
  for (auto& m : t.members)
    up += m.up ? 1 : 0;
  if (up < 2)
    return out;
  auto needed = (up - 1) / 2 + 1; // a majority of the others
  for (size_t i = 0; i < t.members.size(); ++i) {
    auto& m = t.members[i];
    if (!m.up)
      continue;
    size_t votes = 0;
    for (auto& [reporter, r] : reports_) {
      if (reporter == m.name || !fresh(r.received, now_ms))
        continue;
      auto idx = find_member(t, reporter);
      if (idx < 0 || !t.members[static_cast<size_t>(idx)].up)
        continue;
      if (std::find(r.names.begin(), r.names.end(), m.name) != r.names.end())
        ++votes;
    }
    if (votes >= needed)
      out.push_back(static_cast<int32_t>(i));
  }
  return out;
}

bool suspicion_board::pending(const assignment_table& t, int64_t now_ms) const {
  for (auto& [_, r] : reports_) {
    if (!fresh(r.received, now_ms))
      continue;
    for (auto& name : r.names) {
      auto idx = find_member(t, name);
      if (idx >= 0 && t.members[static_cast<size_t>(idx)].up)
        return true;
    }
  }
  return false;
}

std::vector<uint32_t> orphaned_slices(const assignment_table& t) {
  std::vector<uint32_t> out;
  for (uint32_t s = 0; s < t.slices.size(); ++s) {
    auto& a = t.slices[s];
    if (a.primary < 0 || t.members[static_cast<size_t>(a.primary)].up)
      continue;
    for (auto f : a.followers)
      if (f >= 0 && t.members[static_cast<size_t>(f)].up) {
        out.push_back(s);
        break;
      }
  }
  return out;
}

} // namespace tether::directory
