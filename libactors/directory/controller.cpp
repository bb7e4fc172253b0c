#include "directory/controller.hpp"

#include "directory/controller_state.hpp"

#include <algorithm>
#include <chrono>
#include <functional>

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

using namespace internal;

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

/// A member asks to join (or to be taken back): forms the cluster once every
/// directory member asked, takes a restarted process back through an election, and
/// rebalances after a member (re)joined.
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
            auto d = end_drain(t, name);
            switch (d.what) {
              case drain_end::step::unknown:
                return fail(make_error(errc::invalid_key, "no member is called " + name));
              case drain_end::step::incomplete:
                return fail(make_error(errc::unavailable,
                                       "the drain of " + name + " is incomplete: "
                                         + self->state.report.last_error));
              case drain_end::step::already_down:
                rp.deliver(moved);
                return done();
              case drain_end::step::mark:
                return propose(self, std::move(d.next),
                               [rp, done, moved](uint64_t) mutable {
                                 rp.deliver(moved);
                                 done();
                               },
                               fail);
            }
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
        auto d = decide_move(t, slice, name);
        if (d.what == move_decision::step::refuse)
          return fail(make_error(errc::invalid_key, d.why));
        if (d.what == move_decision::step::already) {
          rp.deliver(t.slices[slice].epoch);
          return done();
        }
        auto plan = std::move(d.plan);
        auto epoch = plan.table.slices[slice].epoch;
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
