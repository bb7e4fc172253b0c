#include "directory/election.hpp"

#include <algorithm>
#include <map>
#include <tuple>

#include "replication/quorum.hpp"

namespace tether::directory {

namespace {

/// The answers about one slice.
struct tally {
  std::vector<int32_t> answered; ///< every member that answered
  std::vector<int32_t> ties;     ///< the members whose replicas are the furthest
  bool seeded = false;           ///< some answering replica holds state
  replica_position best;         ///< the furthest position among them
};

std::map<uint32_t, tally> tally_answers(const std::vector<election_answer>& answers) {
  std::map<uint32_t, tally> out;
  for (auto& a : answers) {
    auto& t = out[a.position.slice];
    t.answered.push_back(a.member);
    if (!a.position.seeded)
      continue;
    auto p = std::tie(a.position.epoch, a.position.seq);
    if (!t.seeded || p > std::tie(t.best.epoch, t.best.seq)) {
      t.seeded = true;
      t.best = a.position;
      t.ties = {a.member};
    } else if (p == std::tie(t.best.epoch, t.best.seq)) {
      t.ties.push_back(a.member);
    }
  }
  return out;
}

/// The new primary among `candidates` (non-empty): `preferred` if it is one, else
/// the one leading the fewest slices in `led`, which counts the choice.
int32_t pick_primary(const std::vector<int32_t>& candidates, int32_t preferred,
                     std::map<int32_t, size_t>& led) {
  auto chosen = candidates.front();
  if (std::find(candidates.begin(), candidates.end(), preferred) != candidates.end())
    chosen = preferred;
  else
    for (auto c : candidates)
      if (led[c] < led[chosen])
        chosen = c;
  ++led[chosen];
  return chosen;
}

/// How many of slice `a`'s replicas must answer for an election to be safe.
size_t answers_needed(const slice_assignment& a, uint32_t rf) {
  auto n = 1 + a.followers.size();
  auto q = replication::write_quorum(n, rf);
  return n >= q ? n - q + 1 : 1;
}

} // namespace

uint64_t election_epoch(const slice_assignment& a) {
  return a.epoch + 2;
}

election_result decide_election(assignment_table& t, const assignment_table& plan,
                                const std::vector<uint32_t>& slices,
                                const std::vector<election_answer>& answers,
                                uint32_t rf) {
  election_result out;
  auto tallies = tally_answers(answers);
  std::map<int32_t, size_t> led; // member -> slices it leads, as assigned so far
  for (auto& a : t.slices)
    ++led[a.primary];
  for (auto s : slices) {
    auto& tl = tallies[s];
    if (tl.answered.size() < answers_needed(t.slices[s], rf)) {
      out.unresolved.push_back(s);
      continue;
    }
    auto chosen = pick_primary(tl.seeded ? tl.ties : tl.answered, plan.slices[s].primary,
                               led);
    auto a = plan.slices[s];
    a.empty = !tl.seeded;
    if (a.primary != chosen) {
      a.followers.erase(std::remove(a.followers.begin(), a.followers.end(), chosen),
                        a.followers.end());
      if (a.primary >= 0)
        a.followers.push_back(a.primary);
      a.primary = chosen;
    }
    a.epoch = std::max(a.epoch, election_epoch(t.slices[s]));
    t.slices[s] = a;
    (tl.seeded ? out.elected : out.started_empty).push_back(s);
  }
  return out;
}

std::vector<uint32_t> unsettled_slices(std::map<uint32_t, uint64_t>& unsettled,
                                       const assignment_table& t) {
  std::vector<uint32_t> out;
  for (auto i = unsettled.begin(); i != unsettled.end();) {
    if (i->first < t.slices.size() && t.slices[i->first].epoch == i->second) {
      out.push_back(i->first);
      ++i;
    } else {
      i = unsettled.erase(i);
    }
  }
  return out;
}

} // namespace tether::directory
