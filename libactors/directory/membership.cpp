#include "directory/membership.hpp"

#include <utility>

#include "directory/election.hpp"
#include "directory/placement.hpp"

namespace tether::directory {

namespace {

/// The empty table's join: wait for the directory members, then form.
join_decision decide_formation(const member& m, const std::map<std::string, member>& joined,
                               const std::vector<std::string>& directory_members,
                               uint32_t slice_count, uint32_t replication_factor) {
  join_decision d;
  for (auto& name : directory_members)
    if (joined.count(name) == 0 && name != m.name)
      d.missing += (d.missing.empty() ? "" : ", ") + name;
  if (!d.missing.empty()) {
    d.what = join_decision::step::wait;
    return d;
  }
  auto all = joined;
  all[m.name] = m;
  d.what = join_decision::step::form;
  d.next = first_table(directory_members, all, slice_count, replication_factor);
  return d;
}

} // namespace

join_decision decide_join(const assignment_table& t, const member& m,
                          const std::map<std::string, member>& joined,
                          const std::vector<std::string>& directory_members,
                          uint32_t slice_count, uint32_t replication_factor) {
  if (t.version == 0)
    return decide_formation(m, joined, directory_members, slice_count,
                            replication_factor);
  join_decision d;
  auto idx = find_member(t, m.name);
  if (idx < 0) {
    d.what = join_decision::step::propose;
    d.next = t;
    d.next.members.push_back(m);
    d.next.version += 1;
    return d;
  }
  auto& cur = t.members[static_cast<size_t>(idx)];
  bool same_process = cur.incarnation == 0 || m.incarnation == 0
                      || cur.incarnation == m.incarnation;
  if (!same_process) {
    d.what = join_decision::step::restarted;
    d.member = idx;
    return d;
  }
  if (cur.up && cur.address == m.address) {
    d.what = join_decision::step::known;
    return d;
  }
  d.what = join_decision::step::propose;
  d.next = t;
  auto& back = d.next.members[static_cast<size_t>(idx)];
  if (!back.up)
    for (auto& a : d.next.slices)
      if (a.primary == idx)
        a.epoch = election_epoch(a);
  back.up = true;
  back.drained = false;
  back.address = m.address;
  back.incarnation = m.incarnation;
  d.next.version += 1;
  d.clear_suspicions = true;
  return d;
}

} // namespace tether::directory
