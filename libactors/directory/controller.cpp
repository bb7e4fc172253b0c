#include "directory/controller.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "directory/election.hpp"
#include "directory/membership.hpp"
#include "directory/placement.hpp"
#include "directory/verdict.hpp"
#include "events/event_log.hpp"
#include "tether/tether.hpp"

namespace tether::directory {

namespace {

using std::chrono::milliseconds;

struct controller_state {
  static inline const char* name = "tether.controller";

  controller_config cfg;
  uint32_t self_id = 0; ///< this member's Raft id, learned from its status
  bool busy = false;
  std::deque<std::function<void()>> queue; ///< operations waiting for their turn
  /// Failure decisions waiting: they run before the queue and between the rounds
  /// of a long operation (a drain, a rebalance), never after it.
  std::deque<std::function<void(std::function<void()>)>> urgent;
  /// Handoffs in flight; a failure of their source or target abandons them.
  struct handoff_wait {
    uint32_t slice;
    std::string from;
    std::string to;
    std::function<void(std::string)> abandon;
  };
  std::vector<handoff_wait> handoffs;
  /// Slices whose last handoff ended without a known outcome (abandoned, timed
  /// out, its source unreachable), with the epoch the table had for them then: the
  /// slice may be at its source or its target. An election among all its replicas
  /// settles where it stands; until one decides, every rebalance round asks again,
  /// while the table still has that epoch.
  std::map<uint32_t, uint64_t> unsettled;
  /// The table as last read, to tell which handoffs a failure concerns.
  assignment_table last_table;
  std::map<std::string, caf::actor> agents;
  /// Members that asked to join before the first table exists.
  std::map<std::string, member> joined;
  controller_report report;
  /// Whom each member suspects, and the failure verdict (verdict.hpp).
  suspicion_board suspicions{0};
  bool judging = false; ///< a failure decision is queued or running
  /// The latest reported load of every slice (index = slice id), for placement.
  std::vector<slice_load> loads;
  /// Continuations waiting for a delay (`later`), by id.
  std::map<uint64_t, std::function<void()>> parked;
  uint64_t next_parked = 0;
};

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

using controller_ptr = controller_actor::stateful_pointer<controller_state>;

void log_event(controller_ptr self, std::string kind, std::string text) {
  if (self->state.cfg.events)
    self->state.cfg.events->record(std::move(kind), std::move(text));
}

/// Runs the waiting failure decisions, each to its end, then `k`. Operations that
/// take long call it between their rounds: a failure is never decided after them.
void yield_urgent(controller_ptr self, std::function<void()> k) {
  auto& st = self->state;
  if (st.urgent.empty()) {
    k();
    return;
  }
  auto op = std::move(st.urgent.front());
  st.urgent.pop_front();
  op([self, k] { yield_urgent(self, k); });
}

/// Runs `op` once no other operation is running; `op` calls `done` when finished.
void run(controller_ptr self, std::function<void(std::function<void()>)> op) {
  auto& st = self->state;
  if (st.busy) {
    st.queue.emplace_back([self, op] { run(self, op); });
    return;
  }
  st.busy = true;
  op([self] {
    yield_urgent(self, [self] {
      auto& s = self->state;
      s.busy = false;
      if (!s.queue.empty()) {
        auto next = std::move(s.queue.front());
        s.queue.pop_front();
        next();
      }
    });
  });
}

/// Runs a failure decision now if nothing runs, else as soon as the running
/// operation reaches a round boundary.
void run_urgent(controller_ptr self, std::function<void(std::function<void()>)> op) {
  auto& st = self->state;
  if (!st.busy) {
    run(self, std::move(op));
    return;
  }
  st.urgent.push_back(std::move(op));
}

/// Abandons the handoffs from or to a member that the suspicions already condemn:
/// the operation that waits for them reaches its boundary at once and the failure
/// decision runs, instead of both waiting for the handoff timeout.
void abandon_failing_handoffs(controller_ptr self) {
  auto& st = self->state;
  if (st.handoffs.empty())
    return;
  auto failed = st.suspicions.failed(st.last_table, now_ms());
  if (failed.empty())
    return;
  std::set<std::string> names;
  for (auto i : failed)
    names.insert(st.last_table.members[static_cast<size_t>(i)].name);
  auto waits = st.handoffs; // abandon() edits the list
  for (auto& h : waits)
    if (names.count(h.from) > 0 || names.count(h.to) > 0) {
      auto why = (names.count(h.from) > 0 ? h.from : h.to) + " is failing";
      log_event(self, "abandon",
                "handoff of slice " + std::to_string(h.slice) + " from " + h.from + " to "
                  + h.to + " abandoned: " + why + " (a majority suspects it)");
      h.abandon(why + "; the handoff was abandoned");
    }
}

milliseconds timeout_of(controller_ptr self) {
  return milliseconds(self->state.cfg.request_timeout_ms);
}

/// Calls `k(table)` with the leader's table when this member leads, else `fail`.
void with_table(controller_ptr self, std::function<void(assignment_table)> k,
                std::function<void(caf::error)> fail) {
  auto& cfg = self->state.cfg;
  self->request(cfg.member, timeout_of(self), status_atom::value)
    .then(
      [self, k, fail](uint32_t id, uint32_t leader, uint64_t, uint64_t) {
        self->state.self_id = id;
        self->state.report.leader = leader == id;
        auto& names = self->state.cfg.directory_members;
        std::string who = leader == 0 ? std::string{"none yet"}
                          : leader <= names.size() ? names[leader - 1]
                                                   : std::to_string(leader);
        self->state.report.leader_name = leader == 0 ? std::string{} : who;
        if (leader != id) {
          fail(make_error(errc::unavailable,
                          "this node's directory member is not the leader; leader: "
                            + who));
          return;
        }
        self->request(self->state.cfg.member, timeout_of(self), read_atom::value)
          .then(
            [self, k](assignment_table& t) {
              self->state.last_table = t;
              k(std::move(t));
            },
                [fail](caf::error& err) { fail(err); });
      },
      [fail](caf::error& err) { fail(err); });
}

/// Commits `t` through Raft; `k(version)` or `fail`.
void propose(controller_ptr self, assignment_table t,
             std::function<void(uint64_t)> k, std::function<void(caf::error)> fail) {
  self->request(self->state.cfg.member, timeout_of(self), cas_atom::value,
                std::move(t))
    .then([k](uint64_t v) { k(v); }, [fail](caf::error& err) { fail(err); });
}

placement_options placement_of(const controller_config& cfg) {
  placement_options o;
  o.max_moves = cfg.max_moves;
  o.tolerance = cfg.tolerance;
  return o;
}

void elect(controller_ptr self, assignment_table t, placement_plan plan,
           std::vector<uint32_t> slices,
           std::function<void(assignment_table, std::vector<uint32_t>)> k);

/// Carries out the moves of `plan` against `base`: every slice whose primary
/// changes is handed over by its current primary's supervisor (concurrently), then
/// one table with the slices that moved is committed. A handoff that ends without
/// a known outcome (abandoned, timed out) may have moved the slice anyway: the same
/// table carries an election among its replicas (`elect`). `k(version, moved)`.
void execute(controller_ptr self, assignment_table base, placement_plan plan,
             std::function<void(uint64_t, uint64_t)> k,
             std::function<void(caf::error)> fail) {
  std::set<uint32_t> slices;
  for (auto& m : plan.moves)
    slices.insert(m.slice);
  struct fan {
    std::set<uint32_t> open; ///< handoffs without an answer, not abandoned
    std::vector<uint32_t> done;
    std::vector<uint32_t> unsettled; ///< handoffs without a known outcome
    std::string unsettled_why;       ///< the first one's reason
    std::string error;
    bool finished = false;
  };
  auto f = std::make_shared<fan>();
  auto finish = [self, base, plan, f, k, fail]() mutable {
    if (f->finished)
      return;
    f->finished = true;
    auto t = base;
    t.members = plan.table.members;
    t.replication_factor = plan.table.replication_factor;
    for (auto s : f->done)
      t.slices[s] = plan.table.slices[s];
    self->state.report.moving.clear();
    if (f->done.empty() && f->unsettled.empty() && !f->error.empty()) {
      fail(make_error(errc::unavailable, f->error));
      return;
    }
    // A handoff without a known outcome may have installed the slice on its
    // target: its replicas elect where it stands, in the same table (elect bumps
    // the version).
    auto moved = static_cast<uint64_t>(f->done.size());
    if (!f->unsettled.empty())
      log_event(self, "unsettled",
                "handoffs of " + events::slice_list(f->unsettled)
                  + " ended without a known outcome (" + f->unsettled_why
                  + "); their replicas elect their primaries");
    elect(self, std::move(t), std::move(plan), f->unsettled,
          [self, f, k, fail, moved](assignment_table next, std::vector<uint32_t>) {
            propose(
              self, std::move(next),
              [f, k, fail, moved](uint64_t v) {
                if (moved == 0 && !f->error.empty())
                  fail(make_error(errc::unavailable, f->error));
                else
                  k(v, moved);
              },
              fail);
          });
  };
  std::vector<std::pair<uint32_t, caf::actor>> handoffs;
  for (auto s : slices) {
    auto& before = base.slices[s];
    auto& after = plan.table.slices[s];
    if (before.primary == after.primary || before.primary < 0) {
      f->done.push_back(s); // followers only, or nothing to hand over
      continue;
    }
    auto& from = base.members[static_cast<size_t>(before.primary)].name;
    auto& to = plan.table.members[static_cast<size_t>(after.primary)].name;
    auto i = self->state.agents.find(from);
    if (i == self->state.agents.end() || !i->second) {
      f->error = "slice " + std::to_string(s) + ": no connection to " + from;
      ++self->state.report.moves_failed;
      self->state.report.last_error = f->error;
      continue;
    }
    self->state.report.moving.push_back(pending_move{s, from, to});
    handoffs.emplace_back(s, i->second);
  }
  if (handoffs.empty()) {
    finish();
    return;
  }
  // One answer per handoff: from its source, or its abandonment when its source
  // or target fails meanwhile (a late answer is then ignored, and the slice stays
  // where the table has it).
  auto answered = [self, f, finish, base](uint32_t slice, const std::string* error,
                                         bool unknown) mutable {
    if (f->open.erase(slice) == 0)
      return;
    if (unknown) {
      f->unsettled.push_back(slice);
      self->state.unsettled[slice] = base.slices[slice].epoch;
      if (f->unsettled_why.empty())
        f->unsettled_why = *error;
    }
    auto& hs = self->state.handoffs;
    hs.erase(std::remove_if(hs.begin(), hs.end(),
                            [&](const auto& h) { return h.slice == slice; }),
             hs.end());
    if (error == nullptr) {
      f->done.push_back(slice);
      ++self->state.report.moves_done;
    } else {
      f->error = "slice " + std::to_string(slice) + ": " + *error;
      ++self->state.report.moves_failed;
      self->state.report.last_error = f->error;
    }
    if (f->open.empty())
      finish();
  };
  for (auto& [s, agent] : handoffs) {
    auto& after = plan.table.slices[s];
    f->open.insert(s);
    self->state.handoffs.push_back(
      {s, base.members[static_cast<size_t>(base.slices[s].primary)].name,
       plan.table.members[static_cast<size_t>(after.primary)].name,
       [answered, slice = s](std::string why) mutable {
         answered(slice, &why, true);
       }});
  }
  for (auto& [s, agent] : handoffs) {
    auto& after = plan.table.slices[s];
    auto& to = plan.table.members[static_cast<size_t>(after.primary)].name;
    auto slice = s;
    self
      ->request(agent, milliseconds(self->state.cfg.handoff_timeout_ms),
                handoff_atom::value, s, after.epoch, to)
      .then([answered, slice](uint64_t) mutable { answered(slice, nullptr, false); },
            [answered, slice](caf::error& err) mutable {
              // A refusal of Tether's own says what happened; a timeout or a lost
              // peer (here or between the shards) does not.
              auto why = message_of(err);
              answered(slice, &why, outcome_unknown(err));
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

/// Runs `k` after `delay`, as a message to this controller.
void later(controller_ptr self, milliseconds delay, std::function<void()> k) {
  auto id = self->state.next_parked++;
  self->state.parked.emplace(id, std::move(k));
  self->delayed_send(self, delay, resume_atom::value, id);
}

/// Rounds in which `converge` moves nothing and tries again before it gives up
/// (a handoff's source may not have the table of the round yet: "not served here").
constexpr int converge_retries = 20;
constexpr milliseconds converge_retry_delay{250};

/// Plans with `planner` and executes until the plan is complete, or until
/// `converge_retries` rounds in a row moved nothing (each retried after
/// `converge_retry_delay`; a round that fails retryably counts as one);
/// `k(total moved)`, or `fail` with the last error.
void converge(controller_ptr self,
              std::function<placement_plan(const assignment_table&)> planner,
              uint64_t moved_so_far, std::function<void(uint64_t)> k,
              std::function<void(caf::error)> fail, int retries = converge_retries) {
  yield_urgent(self, [self, planner, moved_so_far, k, fail, retries] {
  auto again = [self, planner, k, fail, retries](uint64_t moved) {
    later(self, converge_retry_delay, [self, planner, moved, k, fail, retries] {
      converge(self, planner, moved, k, fail, retries - 1);
    });
  };
  with_table(
    self,
    [self, planner, moved_so_far, k, fail, retries, again](assignment_table t) {
      auto plan = planner(t);
      if (plan.moves.empty()) {
        k(moved_so_far);
        return;
      }
      auto complete = plan.complete;
      execute(
        self, std::move(t), std::move(plan),
        [self, planner, moved_so_far, complete, k, fail, retries,
         again](uint64_t, uint64_t moved) {
          if (complete && moved > 0)
            k(moved_so_far + moved);
          else if (moved > 0)
            converge(self, planner, moved_so_far + moved, k, fail);
          else if (retries > 0)
            again(moved_so_far);
          else
            k(moved_so_far);
        },
        [moved_so_far, fail, retries, again](caf::error err) {
          if (retries > 0 && code_of(err) == errc::unavailable)
            again(moved_so_far);
          else
            fail(std::move(err));
        });
    },
    fail);
  });
}

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

/// A member asks to join (or to be taken back): forms the cluster once every
/// directory member asked, takes a restarted process back through an election, and
/// rebalances after a member (re)joined.
/// Whether the message being handled comes from this node (with a sender).
bool from_this_node(controller_ptr self) {
  auto& sender = self->current_sender();
  return sender && sender->node() == self->node();
}

/// Whether the message being handled may speak for member `name`: with
/// `bind_members`, only the supervisor known under that name sends it (its
/// handle's node is the one whose certificate carries the name); else always.
bool speaks_for(controller_ptr self, const std::string& name) {
  if (!self->state.cfg.bind_members)
    return true;
  auto i = self->state.agents.find(name);
  return i != self->state.agents.end() && i->second
         && caf::actor_cast<caf::actor>(self->current_sender()) == i->second;
}

caf::typed_response_promise<uint64_t> on_join(controller_ptr self, member m) {
  auto rp = self->make_response_promise<uint64_t>();
  run(self, [self, m, rp](std::function<void()> done) mutable {
    auto fail = [rp, done](caf::error err) mutable {
      rp.deliver(std::move(err));
      done();
    };
    with_table(
      self,
      [self, m, rp, done, fail](assignment_table t) mutable {
        auto& st = self->state;
        if (t.version == 0)
          st.joined[m.name] = m;
        auto d = decide_join(t, m, st.joined, st.cfg.directory_members,
                             st.cfg.slice_count, st.cfg.replication_factor);
        auto answered = [self, rp, done](bool rebalance) {
          return [self, rp, done, rebalance](uint64_t v) mutable {
            rp.deliver(v);
            done();
            // A new, returning or restarted member may take slices now.
            if (rebalance)
              caf::anon_send(self, rebalance_atom::value);
          };
        };
        switch (d.what) {
          case join_decision::step::wait:
            return fail(make_error(errc::unavailable,
                                   "the cluster forms once every directory member "
                                   "joined; waiting for "
                                     + d.missing));
          case join_decision::step::form:
            return propose(self, std::move(d.next), answered(false), fail);
          case join_decision::step::known:
            rp.deliver(t.version);
            return done();
          case join_decision::step::restarted:
            return rejoin_restarted(self, std::move(t), d.member, m, answered(true), fail);
          case join_decision::step::propose:
            if (d.clear_suspicions)
              st.suspicions.clear(m.name); // about the process that failed
            return propose(self, std::move(d.next), answered(true), fail);
        }
      },
      fail);
  });
  return rp;
}

/// One rebalance round: first the elections a failure or an unsettled handoff left
/// unresolved, then new followers where the replication factor is short, then moves
/// toward an even load.
caf::typed_response_promise<uint64_t> on_rebalance(controller_ptr self) {
  auto rp = self->make_response_promise<uint64_t>();
  run(self, [self, rp](std::function<void()> done) mutable {
    auto opts = placement_of(self->state.cfg);
    auto loads = self->state.loads;
    auto balance = [self, rp, done, opts, loads]() mutable {
    if (self->state.suspicions.pending(self->state.last_table, now_ms())) {
      rp.deliver(uint64_t{0}); // the next round, once the verdict is in
      done();
      return;
    }
    converge(
      self,
      [opts, loads](const assignment_table& t) { return balance_round(t, loads, opts); },
      0,
      [rp, done](uint64_t moved) mutable {
        rp.deliver(moved);
        done();
      },
      [rp, done](caf::error err) mutable {
        rp.deliver(std::move(err));
        done();
      },
      0); // no retries: the next balance round is the retry
    };
    // First the elections a failure or an unsettled handoff left unresolved
    // (too few replicas answered): ask again; a table is proposed only if one
    // was decided.
    with_table(
      self,
      [self, balance, opts, loads](assignment_table t) mutable {
        auto orphans = orphaned_slices(t);
        for (auto s : unsettled_slices(self->state.unsettled, t))
          if (std::find(orphans.begin(), orphans.end(), s) == orphans.end())
            orphans.push_back(s);
        if (orphans.empty()) {
          balance();
          return;
        }
        auto plan = restore_rf(t, loads, opts);
        auto before = t.slices;
        elect(self, std::move(t), std::move(plan), orphans,
              [self, balance, before, orphans](assignment_table next,
                                                std::vector<uint32_t>) mutable {
                bool changed = false;
                for (auto s : orphans)
                  changed = changed || next.slices[s].primary != before[s].primary
                            || next.slices[s].epoch != before[s].epoch;
                if (!changed) {
                  balance();
                  return;
                }
                propose(self, std::move(next), [balance](uint64_t) mutable { balance(); },
                        [balance](caf::error) mutable { balance(); });
              });
      },
      [balance](caf::error) mutable { balance(); });
  });
  return rp;
}

/// Moves every slice `name` leads elsewhere, then marks it drained.
caf::typed_response_promise<uint64_t> on_drain(controller_ptr self, std::string name) {
  auto rp = self->make_response_promise<uint64_t>();
  run(self, [self, rp, name](std::function<void()> done) mutable {
    auto fail = [rp, done](caf::error err) mutable {
      rp.deliver(std::move(err));
      done();
    };
    auto opts = placement_of(self->state.cfg);
    auto loads = self->state.loads;
    converge(
      self,
      [opts, name, loads](const assignment_table& t) {
        auto idx = find_member(t, name);
        if (idx < 0)
          return placement_plan{{}, t, true};
        return drain(t, idx, loads, opts);
      },
      0,
      [self, rp, done, fail, name](uint64_t moved) mutable {
        // A drained member takes no slices until it joins again (restart).
        with_table(
          self,
          [self, rp, done, fail, moved, name](assignment_table t) mutable {
            auto idx = find_member(t, name);
            if (idx < 0) {
              rp.deliver(make_error(errc::invalid_key,
                                    "no member is called " + name));
              done();
              return;
            }
            for (auto& s : t.slices)
              if (s.primary == idx) {
                rp.deliver(make_error(errc::unavailable,
                                      "the drain of " + name
                                        + " is incomplete: "
                                        + self->state.report.last_error));
                done();
                return;
              }
            if (!t.members[static_cast<size_t>(idx)].up) {
              rp.deliver(moved);
              done();
              return;
            }
            t.members[static_cast<size_t>(idx)].up = false;
            t.members[static_cast<size_t>(idx)].drained = true;
            t.version += 1;
            propose(self, std::move(t),
                    [rp, done, moved](uint64_t) mutable {
                      rp.deliver(moved);
                      done();
                    },
                    fail);
          },
          fail);
      },
      fail);
  });
  return rp;
}

/// An operator's move of one slice to the member `name`: the slice's epoch after it.
caf::typed_response_promise<uint64_t> on_move(controller_ptr self, uint32_t slice,
                                              std::string name) {
  auto rp = self->make_response_promise<uint64_t>();
  run(self, [self, rp, slice, name](std::function<void()> done) mutable {
    auto fail = [rp, done](caf::error err) mutable {
      rp.deliver(std::move(err));
      done();
    };
    with_table(
      self,
      [self, rp, done, fail, slice, name](assignment_table t) mutable {
        auto to = find_member(t, name);
        if (to < 0 || slice >= t.slices.size() || !t.members[to].up) {
          fail(make_error(errc::invalid_key,
                          to < 0 ? "no member is called " + name
                          : slice >= t.slices.size()
                            ? "no slice " + std::to_string(slice)
                            : name + " is not up"));
          return;
        }
        auto& a = t.slices[slice];
        if (a.primary == to) {
          rp.deliver(a.epoch);
          done();
          return;
        }
        placement_plan plan;
        plan.table = t;
        auto& b = plan.table.slices[slice];
        move m;
        m.slice = slice;
        m.from = a.primary;
        m.to = to;
        m.role = replica_role::primary;
        b.followers.erase(std::remove(b.followers.begin(), b.followers.end(), to),
                          b.followers.end());
        b.primary = to;
        b.epoch = a.epoch + 1;
        plan.moves.push_back(m);
        auto epoch = b.epoch;
        execute(
          self, std::move(t), std::move(plan),
          [self, rp, done, epoch, slice](uint64_t, uint64_t moved) mutable {
            if (moved == 0)
              rp.deliver(make_error(errc::unavailable,
                                    "slice " + std::to_string(slice)
                                      + " did not move: "
                                      + self->state.report.last_error));
            else
              rp.deliver(epoch);
            done();
          },
          fail);
      },
      fail);
  });
  return rp;
}

/// What the controller did so far, as the leader sees it.
caf::typed_response_promise<controller_report> on_report(controller_ptr self) {
  auto rp = self->make_response_promise<controller_report>();
  with_table(
    self,
    [self, rp](assignment_table) mutable {
      auto r = self->state.report;
      r.slice_series.reserve(self->state.loads.size());
      for (auto& l : self->state.loads)
        r.slice_series.push_back(l.series);
      rp.deliver(std::move(r));
    },
    [rp](caf::error err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

/// A member reports whom it suspects: handoffs concerning members a majority
/// suspects are abandoned, and the failure verdict runs in the urgent lane.
void on_suspect(controller_ptr self, std::string reporter,
                std::vector<std::string> names) {
  auto& st = self->state;
  st.suspicions.report(reporter, std::move(names), now_ms());
  abandon_failing_handoffs(self);
  if (st.judging)
    return;
  if (!st.suspicions.any())
    return;
  st.judging = true;
  run_urgent(self, [self](std::function<void()> done) {
    auto finish = [self, done] {
      self->state.judging = false;
      done();
    };
    with_table(
      self,
      [self, finish](assignment_table t) {
        auto failed = self->state.suspicions.failed(t, now_ms());
        if (failed.empty() || t.slices.empty()) {
          finish();
          return;
        }
        for (auto i : failed) {
          t.members[static_cast<size_t>(i)].up = false;
          t.members[static_cast<size_t>(i)].drained = false;
        }
        // Promote a follower wherever one is up: the one that applied the most
        // of the slice's stream. Copies that restore the replication factor
        // follow on the next rounds.
        auto plan = restore_rf(t, self->state.loads, placement_of(self->state.cfg));
        std::vector<uint32_t> promoted;
        for (auto& m : plan.moves)
          if (m.kind == move_kind::promote)
            promoted.push_back(m.slice);
        self->state.report.failures_declared += failed.size();
        elect(self, std::move(t), std::move(plan), std::move(promoted),
              [self, finish](assignment_table next, std::vector<uint32_t>) {
                // Unresolved elections are retried by the rebalance rounds.
                propose(self, std::move(next), [finish](uint64_t) { finish(); },
                        [finish](caf::error) { finish(); });
              });
      },
      [finish](caf::error) { finish(); });
  });
}

/// The series and sample rates a member's primaries reported, for placement; and
/// the slices it is named primary of without serving them, which the rebalance
/// rounds elect again (`unsettled`) while the table keeps them at that epoch.
void on_load(controller_ptr self, const std::string& reporter,
             const std::vector<slice_load_report>& xs) {
  auto& loads = self->state.loads;
  std::vector<uint32_t> unserved;
  for (auto& x : xs) {
    if (x.slice >= self->state.cfg.slice_count)
      continue;
    if (x.unserved_epoch > 0
        && self->state.unsettled.emplace(x.slice, x.unserved_epoch).second)
      unserved.push_back(x.slice);
    if (loads.size() < self->state.cfg.slice_count)
      loads.resize(self->state.cfg.slice_count);
    loads[x.slice] = slice_load{x.series, x.samples_per_second};
  }
  uint64_t slices = 0;
  uint64_t series = 0;
  for (auto& l : loads) {
    slices += (l.series > 0 || l.samples_per_second > 0) ? 1 : 0;
    series += l.series;
  }
  self->state.report.loaded_slices = slices;
  self->state.report.loaded_series = series;
  if (!unserved.empty() && self->state.report.leader)
    log_event(self, "unserved",
              reporter + " is named primary of " + events::slice_list(unserved)
                + " without serving them; their replicas elect their primaries");
}

controller_actor::behavior_type controller_behavior(controller_ptr self,
                                                    controller_config cfg) {
  self->state.cfg = std::move(cfg);
  self->state.suspicions = suspicion_board{self->state.cfg.suspicion_ttl_ms};
  // An error that arrives as a message (another node's actor answering an
  // asynchronous send with one, say) must not stop this actor: CAF's default
  // handler would quit it.
  self->set_error_handler([](caf::error&) {});
  if (self->state.cfg.balance_interval_ms > 0)
    self->delayed_send(self, milliseconds(self->state.cfg.balance_interval_ms),
                       balance_tick_atom::value);
  return {
    [self](resume_atom, uint64_t id) {
      auto& parked = self->state.parked;
      auto i = parked.find(id);
      if (i == parked.end())
        return;
      auto k = std::move(i->second);
      parked.erase(i);
      k();
    },
    [self](balance_tick_atom) {
      // Rebalance unless another operation runs; a follower's attempt ends at
      // the leadership check.
      if (!self->state.busy)
        caf::anon_send(self, rebalance_atom::value);
      self->delayed_send(self, milliseconds(self->state.cfg.balance_interval_ms),
                         balance_tick_atom::value);
    },
    [self](join_atom, member& m) {
      if (speaks_for(self, m.name))
        return on_join(self, m);
      auto rp = self->make_response_promise<uint64_t>();
      rp.deliver(make_error(errc::permission_denied,
                            "a join for " + m.name + " that its supervisor did not send"));
      return rp;
    },
    [self](rebalance_atom) { return on_rebalance(self); },
    [self](drain_atom, std::string& name) { return on_drain(self, std::move(name)); },
    [self](move_atom, uint32_t slice, std::string& name) {
      return on_move(self, slice, std::move(name));
    },
    [self](report_atom) { return on_report(self); },
    [self](suspect_atom, std::string& reporter, std::vector<std::string>& names) {
      if (speaks_for(self, reporter))
        on_suspect(self, std::move(reporter), std::move(names));
    },
    [self](load_atom, std::string& reporter, std::vector<slice_load_report>& xs) {
      if (speaks_for(self, reporter))
        on_load(self, reporter, xs);
    },
    [self](agents_atom, std::vector<agent>& xs) {
      if (self->state.cfg.bind_members && !from_this_node(self))
        return;
      auto& agents = self->state.agents;
      agents.clear();
      for (auto& a : xs)
        agents[a.name] = a.handle;
    },
  };
}

} // namespace

controller_actor spawn_controller(caf::actor_system& sys, controller_config cfg) {
  return sys.spawn(controller_behavior, std::move(cfg));
}

void add_controller_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<agent>("tether.agent");
  cfg.add_message_type<std::vector<agent>>("std::vector<tether.agent>");
  cfg.add_message_type<pending_move>("tether.pending_move");
  cfg.add_message_type<std::vector<pending_move>>("std::vector<tether.pending_move>");
  cfg.add_message_type<controller_report>("tether.controller_report");
  cfg.add_message_type<slice_load_report>("tether.slice_load_report");
  cfg.add_message_type<std::vector<slice_load_report>>(
    "std::vector<tether.slice_load_report>");
  cfg.add_message_type<controller_actor>("tether.controller_actor");
}

} // namespace tether::directory
