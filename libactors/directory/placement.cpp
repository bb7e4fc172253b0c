#include "directory/placement.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace tether::directory {

namespace {

constexpr double eps = 1e-9;

/// Working copy of a table with the member loads kept current as moves apply.
struct planner {
  assignment_table t;
  placement_options opts;
  std::vector<double> weight;  ///< per slice
  std::vector<double> rload;   ///< per member: replica load
  std::vector<double> pload;   ///< per member: primary load
  std::vector<char> touched;   ///< per slice
  std::vector<move> moves;

  planner(const assignment_table& table, const std::vector<slice_load>& loads,
          const placement_options& o)
    : t(table), opts(o) {
    weight.resize(t.slices.size());
    for (size_t s = 0; s < weight.size(); ++s)
      weight[s] = slice_weight(s < loads.size() ? loads[s] : slice_load{}, opts);
    rload.assign(t.members.size(), 0);
    pload.assign(t.members.size(), 0);
    touched.assign(t.slices.size(), 0);
    for (size_t s = 0; s < t.slices.size(); ++s) {
      auto& a = t.slices[s];
      if (valid(a.primary)) {
        rload[idx(a.primary)] += weight[s];
        pload[idx(a.primary)] += weight[s];
      }
      for (auto f : a.followers)
        if (valid(f))
          rload[idx(f)] += weight[s];
    }
  }

  static size_t idx(int32_t m) { return static_cast<size_t>(m); }

  bool valid(int32_t m) const { return m >= 0 && idx(m) < t.members.size(); }

  bool up(int32_t m) const { return valid(m) && t.members[idx(m)].up; }

  double combined(int32_t m) const {
    return rload[idx(m)] + (opts.primary_weight - 1) * pload[idx(m)];
  }

  bool holds(uint32_t s, int32_t m) const {
    auto& a = t.slices[s];
    return a.primary == m
           || std::find(a.followers.begin(), a.followers.end(), m)
                != a.followers.end();
  }

  /// Up members, in index order.
  std::vector<int32_t> up_members() const {
    std::vector<int32_t> out;
    for (size_t m = 0; m < t.members.size(); ++m)
      if (t.members[m].up)
        out.push_back(static_cast<int32_t>(m));
    return out;
  }

  /// Least loaded (combined) up member that holds no replica of `s` and is not
  /// `except`; ties go to the lower index. -1 if none.
  int32_t least_loaded_for(uint32_t s, int32_t except) const {
    int32_t best = -1;
    for (size_t i = 0; i < t.members.size(); ++i) {
      auto m = static_cast<int32_t>(i);
      if (!up(m) || m == except || holds(s, m))
        continue;
      if (best < 0 || combined(m) < combined(best) - eps)
        best = m;
    }
    return best;
  }

  void touch(uint32_t s) { touched[s] = 1; }

  /// The follower on `to` becomes primary; the primary (if any) takes its place
  /// among the followers.
  void promote(uint32_t s, int32_t to) {
    auto& a = t.slices[s];
    auto from = a.primary;
    auto i = std::find(a.followers.begin(), a.followers.end(), to);
    if (valid(from)) {
      *i = from;
      pload[idx(from)] -= weight[s];
    } else {
      a.followers.erase(i);
    }
    a.primary = to;
    pload[idx(to)] += weight[s];
    moves.push_back({s, from, to, replica_role::primary, move_kind::promote});
    touch(s);
  }

  /// Replaces the replica on `from` (or adds a follower when `from` is -1) by one on
  /// `to` with the same role.
  void copy(uint32_t s, int32_t from, int32_t to) {
    auto& a = t.slices[s];
    auto role = replica_role::follower;
    if (from >= 0 && a.primary == from) {
      role = replica_role::primary;
      a.primary = to;
      if (valid(from))
        pload[idx(from)] -= weight[s];
      pload[idx(to)] += weight[s];
    } else if (from >= 0) {
      *std::find(a.followers.begin(), a.followers.end(), from) = to;
    } else {
      a.followers.push_back(to);
    }
    if (valid(from))
      rload[idx(from)] -= weight[s];
    rload[idx(to)] += weight[s];
    moves.push_back({s, from, to, role, move_kind::copy});
    touch(s);
  }

  void drop(uint32_t s, int32_t from) {
    auto& a = t.slices[s];
    a.followers.erase(std::find(a.followers.begin(), a.followers.end(), from));
    if (valid(from))
      rload[idx(from)] -= weight[s];
    moves.push_back({s, from, -1, replica_role::follower, move_kind::drop});
    touch(s);
  }

  placement_plan finish(bool complete) {
    placement_plan plan;
    if (!moves.empty()) {
      ++t.version;
      for (size_t s = 0; s < t.slices.size(); ++s)
        if (touched[s])
          ++t.slices[s].epoch;
    }
    plan.moves = std::move(moves);
    plan.table = std::move(t);
    plan.complete = complete;
    return plan;
  }
};

/// Bounds [lo, hi] of the tolerance band around the mean of `load` over `ms`.
std::pair<double, double> band(const std::vector<double>& load,
                               const std::vector<int32_t>& ms, double tolerance) {
  double sum = 0;
  for (auto m : ms)
    sum += load[static_cast<size_t>(m)];
  auto mean = ms.empty() ? 0.0 : sum / static_cast<double>(ms.size());
  return {mean * (1 - tolerance) - eps, mean * (1 + tolerance) + eps};
}

/// A candidate move of `rebalance`.
struct candidate {
  uint32_t slice = 0;
  int32_t from = -1;
  int32_t to = -1;
  bool found = false;
};

/// Finds the first pair (source by descending load, destination by ascending load,
/// ties by index) that lies outside the band and has a slice whose move strictly
/// narrows the pair's gap; `pick(src, dst, gap)` returns the best slice or -1.
template <class Pick>
candidate find_pair(const std::vector<double>& load, const std::vector<int32_t>& ms,
                    double tolerance, Pick pick) {
  auto [lo, hi] = band(load, ms, tolerance);
  auto by_load = ms;
  std::stable_sort(by_load.begin(), by_load.end(), [&](int32_t x, int32_t y) {
    return load[static_cast<size_t>(x)] > load[static_cast<size_t>(y)];
  });
  for (auto src : by_load) {
    auto ls = load[static_cast<size_t>(src)];
    for (auto it = by_load.rbegin(); it != by_load.rend(); ++it) {
      auto dst = *it;
      auto ld = load[static_cast<size_t>(dst)];
      if (ls <= ld + eps)
        break;
      if (ls <= hi && ld >= lo)
        continue;
      auto s = pick(src, dst, ls - ld);
      if (s >= 0)
        return {static_cast<uint32_t>(s), src, dst, true};
    }
  }
  return {};
}

/// Picks, among the slices accepted by `ok`, the one whose weight w best halves
/// `gap` (smallest |gap - 2w|, lowest slice id on ties) with w < gap. -1 if none.
template <class Ok>
int64_t best_slice(const planner& p, double gap, Ok ok) {
  int64_t best = -1;
  double best_score = std::numeric_limits<double>::infinity();
  for (uint32_t s = 0; s < p.t.slices.size(); ++s) {
    auto w = p.weight[s];
    if (w >= gap - eps || !ok(s))
      continue;
    auto score = std::abs(gap - 2 * w);
    if (score < best_score - eps) {
      best_score = score;
      best = s;
    }
  }
  return best;
}

} // namespace

double slice_weight(const slice_load& load, const placement_options& opts) {
  return 1.0 + opts.series_cost * static_cast<double>(load.series)
         + opts.rate_cost * load.samples_per_second;
}

std::vector<double> member_load(const assignment_table& table,
                                const std::vector<slice_load>& loads,
                                const placement_options& opts) {
  planner p{table, loads, opts};
  std::vector<double> out(table.members.size());
  for (size_t m = 0; m < out.size(); ++m)
    out[m] = p.combined(static_cast<int32_t>(m));
  return out;
}

int32_t find_member(const assignment_table& table, const std::string& name) {
  for (size_t m = 0; m < table.members.size(); ++m)
    if (table.members[m].name == name)
      return static_cast<int32_t>(m);
  return -1;
}

placement_plan initial_placement(const std::vector<member>& members,
                                 uint32_t slice_count, uint32_t replication_factor) {
  placement_plan plan;
  auto& t = plan.table;
  t.version = 1;
  t.members = members;
  std::vector<int32_t> ups;
  for (size_t m = 0; m < members.size(); ++m)
    if (members[m].up)
      ups.push_back(static_cast<int32_t>(m));
  auto n = static_cast<uint32_t>(ups.size());
  t.replication_factor = std::min(std::max(replication_factor, 1u), std::max(n, 1u));
  t.slices.resize(slice_count);
  for (uint32_t s = 0; s < slice_count; ++s) {
    auto& a = t.slices[s];
    a.epoch = 1;
    if (n == 0)
      continue;
    a.primary = ups[s % n];
    plan.moves.push_back({s, -1, a.primary, replica_role::primary, move_kind::copy});
    for (uint32_t r = 1; r < t.replication_factor; ++r) {
      a.followers.push_back(ups[(s + r) % n]);
      plan.moves.push_back(
        {s, -1, a.followers.back(), replica_role::follower, move_kind::copy});
    }
  }
  return plan;
}

placement_plan rebalance(const assignment_table& table,
                         const std::vector<slice_load>& loads,
                         const placement_options& opts) {
  planner p{table, loads, opts};
  auto ms = p.up_members();
  auto budget = std::max(opts.max_moves, 1u);
  // Phase 1: replica load, by copies; followers before primaries.
  auto next_copy = [&] {
    return find_pair(p.rload, ms, opts.tolerance,
                     [&](int32_t src, int32_t dst, double gap) {
                       auto movable = [&](uint32_t s, bool primary) {
                         auto& a = p.t.slices[s];
                         bool on_src = primary
                                         ? a.primary == src
                                         : std::find(a.followers.begin(),
                                                     a.followers.end(), src)
                                             != a.followers.end();
                         return on_src && !p.holds(s, dst);
                       };
                       auto found = best_slice(p, gap, [&](uint32_t s) {
                         return movable(s, false);
                       });
                       if (found < 0)
                         found = best_slice(p, gap, [&](uint32_t s) {
                           return movable(s, true);
                         });
                       return found;
                     });
  };
  // Phase 2: primary load, by promotions only (replica load does not change).
  auto next_promote = [&] {
    return find_pair(p.pload, ms, opts.tolerance,
                     [&](int32_t src, int32_t dst, double gap) {
                       return best_slice(p, gap, [&](uint32_t s) {
                         auto& a = p.t.slices[s];
                         return a.primary == src
                                && std::find(a.followers.begin(), a.followers.end(),
                                             dst)
                                     != a.followers.end();
                       });
                     });
  };
  for (;;) {
    auto c = next_copy();
    bool promote = false;
    if (!c.found) {
      c = next_promote();
      promote = true;
    }
    if (!c.found)
      return p.finish(true);
    if (p.moves.size() >= budget)
      return p.finish(false);
    if (promote)
      p.promote(c.slice, c.to);
    else
      p.copy(c.slice, c.from, c.to);
  }
}

placement_plan drain(const assignment_table& table, int32_t member,
                     const std::vector<slice_load>& loads,
                     const placement_options& opts) {
  planner p{table, loads, opts};
  if (!p.valid(member))
    return p.finish(true);
  auto budget = std::max(opts.max_moves, 1u);
  bool complete = true;
  for (uint32_t s = 0; s < p.t.slices.size(); ++s) {
    if (!p.holds(s, member))
      continue;
    auto left = budget - static_cast<uint32_t>(p.moves.size());
    auto& a = p.t.slices[s];
    if (a.primary == member) {
      // Least loaded up follower takes over without a data move.
      int32_t heir = -1;
      for (auto f : a.followers)
        if (p.up(f) && f != member && (heir < 0 || p.combined(f) < p.combined(heir) - eps))
          heir = f;
      if (heir >= 0) {
        if (left < 1) {
          complete = false;
          break;
        }
        p.promote(s, heir);
        if (left < 2) { // the demoted replica moves in the next plan
          complete = false;
          break;
        }
        if (auto dst = p.least_loaded_for(s, member); dst >= 0)
          p.copy(s, member, dst);
        else
          p.drop(s, member);
        continue;
      }
      auto dst = p.least_loaded_for(s, member);
      if (dst < 0) {
        complete = false; // nowhere to go: the drain is stuck on this slice
        continue;
      }
      if (left < 1) {
        complete = false;
        break;
      }
      p.copy(s, member, dst);
      continue;
    }
    if (left < 1) {
      complete = false;
      break;
    }
    auto dst = p.least_loaded_for(s, member);
    if (dst >= 0)
      p.copy(s, member, dst);
    else
      p.drop(s, member);
  }
  return p.finish(complete);
}

placement_plan restore_rf(const assignment_table& table,
                          const std::vector<slice_load>& loads,
                          const placement_options& opts) {
  planner p{table, loads, opts};
  auto n = static_cast<uint32_t>(p.t.slices.size());
  // Failover first: every slice with a down primary and an up follower.
  for (uint32_t s = 0; s < n; ++s) {
    auto& a = p.t.slices[s];
    if (p.up(a.primary))
      continue;
    int32_t heir = -1;
    for (auto f : a.followers)
      if (p.up(f) && (heir < 0 || p.combined(f) < p.combined(heir) - eps))
        heir = f;
    if (heir >= 0)
      p.promote(s, heir);
  }
  auto ups = static_cast<uint32_t>(p.up_members().size());
  auto want = std::min(p.t.replication_factor, ups);
  auto live = [&](uint32_t s) {
    auto& a = p.t.slices[s];
    uint32_t k = p.up(a.primary) ? 1 : 0;
    for (auto f : a.followers)
      k += p.up(f) ? 1 : 0;
    return k;
  };
  // Then replicas, slices with the fewest up replicas first.
  std::vector<uint32_t> order;
  for (uint32_t s = 0; s < n; ++s) {
    auto k = live(s);
    if (k > 0 && k < want)
      order.push_back(s);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t x, uint32_t y) { return live(x) < live(y); });
  auto budget = std::max(opts.max_moves, 1u);
  uint32_t copies = 0;
  bool complete = true;
  for (auto s : order) {
    while (live(s) < want) {
      auto dst = p.least_loaded_for(s, -1);
      if (dst < 0)
        break;
      if (copies >= budget) {
        complete = false;
        break;
      }
      auto& a = p.t.slices[s];
      int32_t gone = -1;
      for (auto f : a.followers)
        if (!p.up(f)) {
          gone = f;
          break;
        }
      p.copy(s, gone, dst);
      ++copies;
    }
    if (!complete)
      break;
  }
  return p.finish(complete);
}

assignment_table first_table(const std::vector<std::string>& directory_members,
                             const std::map<std::string, member>& joined,
                             uint32_t slice_count, uint32_t replication_factor) {
  std::vector<member> ms;
  for (auto& name : directory_members)
    ms.push_back(joined.at(name));
  for (auto& [name, m] : joined)
    if (std::find(directory_members.begin(), directory_members.end(), name)
        == directory_members.end())
      ms.push_back(m);
  return initial_placement(ms, slice_count, replication_factor).table;
}

placement_plan balance_round(const assignment_table& table,
                             const std::vector<slice_load>& loads,
                             const placement_options& opts) {
  if (table.slices.empty())
    return placement_plan{{}, table, true};
  auto restored = restore_rf(table, loads, opts);
  placement_plan copies{{}, table, false};
  bool orphans = false;
  for (auto& m : restored.moves) {
    if (m.kind != move_kind::copy || m.role != replica_role::follower)
      continue;
    // A slice whose primary is down waits for its election: restore_rf promoted a
    // follower of its own choosing in it, and only the election knows which follower
    // holds every acknowledged write.
    auto p = table.slices[m.slice].primary;
    if (p < 0 || static_cast<size_t>(p) >= table.members.size() || !table.members[p].up) {
      orphans = true;
      continue;
    }
    copies.moves.push_back(m);
    copies.table.slices[m.slice] = restored.table.slices[m.slice];
  }
  if (!copies.moves.empty() || orphans)
    return copies;
  return rebalance(table, loads, opts);
}

move_decision decide_move(const assignment_table& table, uint32_t slice,
                          const std::string& name) {
  move_decision d;
  auto to = find_member(table, name);
  if (to < 0 || slice >= table.slices.size() || !table.members[static_cast<size_t>(to)].up) {
    d.why = to < 0                         ? "no member is called " + name
            : slice >= table.slices.size() ? "no slice " + std::to_string(slice)
                                           : name + " is not up";
    return d;
  }
  auto& a = table.slices[slice];
  if (a.primary == to) {
    d.what = move_decision::step::already;
    return d;
  }
  d.what = move_decision::step::move;
  d.plan.table = table;
  auto& b = d.plan.table.slices[slice];
  b.followers.erase(std::remove(b.followers.begin(), b.followers.end(), to),
                    b.followers.end());
  b.primary = to;
  b.epoch = a.epoch + 1;
  move m;
  m.slice = slice;
  m.from = a.primary;
  m.to = to;
  m.role = replica_role::primary;
  d.plan.moves.push_back(m);
  return d;
}

drain_end end_drain(const assignment_table& table, const std::string& name) {
  drain_end d;
  auto idx = find_member(table, name);
  if (idx < 0)
    return d;
  for (auto& s : table.slices)
    if (s.primary == idx) {
      d.what = drain_end::step::incomplete;
      return d;
    }
  auto& m = table.members[static_cast<size_t>(idx)];
  if (!m.up) {
    d.what = drain_end::step::already_down;
    return d;
  }
  d.what = drain_end::step::mark;
  d.next = table;
  d.next.members[static_cast<size_t>(idx)].up = false;
  d.next.members[static_cast<size_t>(idx)].drained = true;
  d.next.version += 1;
  return d;
}

} // namespace tether::directory
