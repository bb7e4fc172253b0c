#include "directory/controller_state.hpp"

#include <algorithm>
#include <memory>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "directory/election.hpp"
#include "events/event_log.hpp"
#include "tether/tether.hpp"

namespace tether::directory::internal {

namespace {

/// Logs what an election decided: who leads how many of `slices` at which epochs,
/// and the slices left unresolved (too few followers answered).
void log_election(controller_ptr self, const assignment_table& t,
                  const std::vector<uint32_t>& slices, const election_result& r) {
  auto& unresolved = r.unresolved;
  std::map<int32_t, std::pair<size_t, uint64_t>> leads; // member -> (slices, min epoch)
  std::set<uint32_t> open(unresolved.begin(), unresolved.end());
  for (auto s : slices) {
    if (open.count(s) > 0)
      continue;
    auto& e = leads[t.slices[s].primary];
    e.second = e.first == 0 ? t.slices[s].epoch : std::min(e.second, t.slices[s].epoch);
    ++e.first;
  }
  std::string text;
  for (auto& [m, e] : leads)
    text += (text.empty() ? "" : ", ")
            + (m >= 0 && static_cast<size_t>(m) < t.members.size()
                 ? t.members[static_cast<size_t>(m)].name
                 : std::string{"(none)"})
            + " leads " + std::to_string(e.first) + " from epoch " + std::to_string(e.second);
  if (!r.started_empty.empty())
    text += "; " + std::to_string(r.started_empty.size())
            + " start empty (no answering replica held state; first: slice "
            + std::to_string(r.started_empty.front()) + ")";
  if (!text.empty())
    log_event(self, "election",
              std::to_string(slices.size() - open.size()) + " slices elected for table version "
                + std::to_string(t.version) + ": " + text);
  if (!unresolved.empty())
    log_event(self, "unresolved",
              std::to_string(unresolved.size()) + " slices without enough follower answers "
                + "(first: slice " + std::to_string(unresolved.front()) + ", epoch "
                + std::to_string(t.slices[unresolved.front()].epoch)
                + "); they keep their primary and are asked again every rebalance round");
}

} // namespace

/// Picks the new primary of every slice in `slices` (whose primary failed or came
/// back empty, or whose handoff is unsettled). Asks every up replica, through its
/// node's supervisor, where its
/// replica stands, and fences it first at the epoch this election commits
/// (`election_epoch`, for the table version it proposes): from then on it refuses
/// the old primary, which may still be alive behind a partition. `decide_election`
/// (election.hpp) decides from the answers; `k(table, unresolved)` gets `t` with the
/// elected slices at their new epoch and the version bumped.
void elect(controller_ptr self, assignment_table t, placement_plan plan,
           std::vector<uint32_t> slices,
           std::function<void(assignment_table, std::vector<uint32_t>)> k) {
  t.version += 1;
  if (slices.empty()) {
    k(std::move(t), {});
    return;
  }
  // Ask every up replica of the affected slices that suspicions do not condemn,
  // one request per node: the followers, and the primary if it is up (a slice
  // whose handoff is unsettled).
  struct question {
    std::vector<uint32_t> slices;
    std::vector<uint64_t> fences;
  };
  std::map<std::string, question> ask;
  auto failing = self->state.suspicions.failed(t, now_ms()); // would only make it wait
  auto ask_member = [&](uint32_t s, int32_t m) {
    if (m < 0 || !t.members[static_cast<size_t>(m)].up
        || std::find(failing.begin(), failing.end(), m) != failing.end())
      return;
    auto& q = ask[t.members[static_cast<size_t>(m)].name];
    q.slices.push_back(s);
    q.fences.push_back(election_epoch(t.slices[s]));
  };
  for (auto s : slices) {
    ask_member(s, t.slices[s].primary);
    for (auto f : t.slices[s].followers)
      ask_member(s, f);
  }
  struct fan {
    size_t remaining = 0;
    std::vector<election_answer> answers;
  };
  auto f = std::make_shared<fan>();
  auto rf = self->state.cfg.replication_factor;
  auto finish = [self, t, plan, slices, f, k, rf]() mutable {
    auto r = decide_election(t, plan.table, slices, f->answers, rf);
    log_election(self, t, slices, r);
    k(std::move(t), std::move(r.unresolved));
  };
  std::vector<std::pair<std::string, caf::actor>> targets;
  for (auto& [name, q] : ask) {
    auto i = self->state.agents.find(name);
    if (i != self->state.agents.end() && i->second)
      targets.emplace_back(name, i->second);
  }
  if (targets.empty()) {
    finish();
    return;
  }
  f->remaining = targets.size();
  for (auto& [name, agent] : targets) {
    auto idx = find_member(t, name);
    auto& q = ask[name];
    self
      ->request(agent, milliseconds(std::min<uint32_t>(self->state.cfg.request_timeout_ms,
                                                       1000)),
                position_atom::value, q.slices, q.fences, t.version)
      .then(
        [f, idx, finish](std::vector<replica_position>& ps) mutable {
          for (auto& p : ps)
            f->answers.push_back(election_answer{idx, p});
          if (--f->remaining == 0)
            finish();
        },
        [f, finish](caf::error&) mutable {
          if (--f->remaining == 0)
            finish();
        });
  }
}

/// Member `idx` joined as a new process (another incarnation than the table
/// records): its replicas are empty. If the table still has it up, it restarted
/// faster than failure detection. Declares the previous process failed, as a
/// failure report would, and elects a follower for every slice it still leads;
/// then takes the new process back in the same table (it follows its old slices
/// and is seeded by their primaries). While some of those slices have too few
/// followers answering to elect safely, the member stays down and the join is
/// refused as retryable: the node asks again, and the rebalance rounds retry the
/// elections meanwhile.
void rejoin_restarted(controller_ptr self, assignment_table t, int32_t idx, member m,
                      std::function<void(uint64_t)> k,
                      std::function<void(caf::error)> fail) {
  auto& st = self->state;
  auto& cur = t.members[static_cast<size_t>(idx)];
  if (cur.up)
    st.report.failures_declared += 1;
  cur.up = false;
  auto plan = restore_rf(t, st.loads, placement_of(st.cfg));
  std::vector<uint32_t> promoted;
  for (auto& mv : plan.moves)
    if (mv.kind == move_kind::promote)
      promoted.push_back(mv.slice);
  st.suspicions.clear(m.name);
  elect(self, std::move(t), std::move(plan), std::move(promoted),
        [self, idx, m, k, fail](assignment_table next, std::vector<uint32_t> unresolved) {
          if (!unresolved.empty()) {
            auto text = m.name + " restarted; " + std::to_string(unresolved.size())
                        + " slices it led wait for enough of their followers to answer";
            propose(self, std::move(next),
                    [fail, text](uint64_t) { fail(make_error(errc::unavailable, text)); },
                    fail);
            return;
          }
          auto& c = next.members[static_cast<size_t>(idx)];
          c.up = true;
          c.drained = false;
          c.address = m.address;
          c.incarnation = m.incarnation;
          propose(self, std::move(next), k, fail);
        });
}

} // namespace tether::directory::internal
