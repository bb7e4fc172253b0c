#include "events/table_events.hpp"

#include <map>

namespace tether::events {

namespace {

const member* find(const assignment_table& t, const std::string& name) {
  for (auto& m : t.members)
    if (m.name == name)
      return &m;
  return nullptr;
}

std::string name_of(const assignment_table& t, int32_t idx) {
  if (idx < 0 || static_cast<size_t>(idx) >= t.members.size())
    return "(none)";
  return t.members[static_cast<size_t>(idx)].name;
}

void member_changes(const assignment_table& before, const assignment_table& after,
                    std::vector<table_event>& out) {
  for (auto& m : after.members) {
    auto* old = find(before, m.name);
    if (old == nullptr) {
      out.emplace_back("join", m.name + " joined the directory (" + m.address + ")");
    } else if (old->up && !m.up) {
      if (m.drained)
        out.emplace_back("drain", m.name + " drained: it leads and follows nothing");
      else
        out.emplace_back("failed", m.name + " declared failed by the directory");
    } else if (!old->up && m.up) {
      out.emplace_back("join", m.name + " is up again");
    } else if (m.up && old->incarnation != 0 && m.incarnation != old->incarnation) {
      out.emplace_back("join", m.name + " rejoined as a new process");
    }
  }
}

/// Slices whose primary changed, grouped by (old name, new name).
void primary_changes(const assignment_table& before, const assignment_table& after,
                     std::vector<table_event>& out) {
  std::map<std::pair<std::string, std::string>, std::vector<uint32_t>> moved;
  auto n = std::min(before.slices.size(), after.slices.size());
  for (uint32_t s = 0; s < n; ++s) {
    auto from = name_of(before, before.slices[s].primary);
    auto to = name_of(after, after.slices[s].primary);
    if (from != to)
      moved[{from, to}].push_back(s);
  }
  for (auto& [who, slices] : moved) {
    auto* old = find(after, who.first);
    bool failover = old == nullptr || (!old->up && !old->drained);
    std::string what = std::to_string(slices.size())
                       + (slices.size() == 1 ? " slice" : " slices");
    if (slices.size() == 1)
      what = "slice " + std::to_string(slices[0]);
    out.emplace_back(failover ? "failover" : "move",
                     what + " " + (failover ? "failed over" : "moved") + " from "
                       + who.first + " to " + who.second + " (table version "
                       + std::to_string(after.version) + ")");
  }
}

} // namespace

std::vector<table_event> table_changes(const assignment_table& before,
                                       const assignment_table& after) {
  std::vector<table_event> out;
  if (before.slices.empty()) {
    if (!after.slices.empty())
      out.emplace_back("table", "directory table version " + std::to_string(after.version)
                                  + ": " + std::to_string(after.slices.size())
                                  + " slices on " + std::to_string(after.members.size())
                                  + " members");
    return out;
  }
  member_changes(before, after, out);
  primary_changes(before, after, out);
  return out;
}

} // namespace tether::events
