#include "directory/controller_state.hpp"

#include <algorithm>
#include <memory>
#include <set>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "events/event_log.hpp"
#include "tether/tether.hpp"

namespace tether::directory::internal {

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

/// Plans with `planner` and executes until the plan is complete, or until
/// `converge_retries` rounds in a row moved nothing (each retried after
/// `converge_retry_delay`; a round that fails retryably counts as one);
/// `k(total moved)`, or `fail` with the last error.
void converge(controller_ptr self,
              std::function<placement_plan(const assignment_table&)> planner,
              uint64_t moved_so_far, std::function<void(uint64_t)> k,
              std::function<void(caf::error)> fail, int retries) {
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

} // namespace tether::directory::internal
