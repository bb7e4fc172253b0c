#include "series/shard.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "series/input_tracker.hpp"
#include "series/slice_state.hpp"
#include "tether/tether.hpp"
#include "wire/codec.hpp"

namespace tether::series {

namespace {

struct shard_state {
  static inline const char* name = "tether.shard";

  shard_config cfg;
  int32_t self_member = -1;
  uint64_t table_version = 0;
  /// Slices this shard serves as primary, by slice id.
  std::unordered_map<uint32_t, std::unique_ptr<slice_state>> slices;
  /// Subscribers per output key, and the keys each subscriber holds.
  std::unordered_map<std::string, std::vector<caf::actor>> subscribers;
  std::map<caf::actor_addr, std::vector<std::string>> keys_of;
  /// Open windows by the time they close (end + lateness): every (series, window)
  /// is scheduled once, when its first sample opens it, and closed once.
  std::map<int64_t, std::vector<opened_window>> closing;
  std::vector<opened_window> opened; ///< scratch of the write handler
  /// Input series tracked against the limits (only while a limit is configured).
  std::unique_ptr<input_tracker> inputs;
  int64_t next_expiry = 0;

  int64_t now() const {
    return cfg.clock ? cfg.clock() : wire::now_ms();
  }

  slice_state* hosted(uint32_t slice) {
    auto i = slices.find(slice);
    return i == slices.end() ? nullptr : i->second.get();
  }

  void drop_slice(uint32_t s) {
    auto* sl = hosted(s);
    if (sl == nullptr)
      return;
    cfg.counters->series -= sl->series_count();
    for (auto i = closing.begin(); i != closing.end();) {
      auto& vec = i->second;
      vec.erase(std::remove_if(vec.begin(), vec.end(),
                               [s](const opened_window& o) {
                                 return o.entry->slice == s;
                               }),
                vec.end());
      i = vec.empty() ? closing.erase(i) : std::next(i);
    }
    slices.erase(s);
  }

  void apply_table(const assignment_table& t) {
    if (t.version <= table_version)
      return;
    table_version = t.version;
    self_member = -1;
    for (size_t i = 0; i < t.members.size(); ++i)
      if (t.members[i].name == cfg.node_name)
        self_member = static_cast<int32_t>(i);
    auto before = static_cast<uint32_t>(slices.size());
    for (uint32_t s = 0; s < t.slices.size(); ++s) {
      if (shard_of(s, cfg.shard_count) != cfg.index)
        continue;
      auto& a = t.slices[s];
      if (a.primary == self_member && self_member >= 0) {
        auto& ptr = slices[s];
        if (!ptr)
          ptr = std::make_unique<slice_state>(s);
        ptr->epoch = a.epoch;
      } else {
        // Losing a slice without a handoff happens only on a directory decision;
        // planned moves transfer the state first (cluster issue).
        drop_slice(s);
      }
    }
    cfg.counters->primary_slices += static_cast<uint32_t>(slices.size());
    cfg.counters->primary_slices -= before;
  }

  series_view view_of(const key_route& k, slice_state* sl) {
    series_view v;
    v.key = k.key;
    v.slice = k.slice;
    v.node = cfg.node_name;
    if (sl == nullptr)
      return v;
    v.epoch = sl->epoch;
    if (auto* e = sl->find(k.key))
      e->state.fill(v);
    return v;
  }

  void drop_subscriber(const caf::actor_addr& who) {
    auto i = keys_of.find(who);
    if (i == keys_of.end())
      return;
    for (auto& key : i->second) {
      auto j = subscribers.find(key);
      if (j == subscribers.end())
        continue;
      auto& vec = j->second;
      vec.erase(std::remove_if(vec.begin(), vec.end(),
                               [&](const caf::actor& a) {
                                 return a.address() == who;
                               }),
                vec.end());
      if (vec.empty())
        subscribers.erase(j);
    }
    keys_of.erase(i);
  }
};

using shard_ptr = shard_actor::stateful_pointer<shard_state>;

/// Closes every window due at `now`, oldest first, and sends each subscriber one
/// message with the windows of its keys that closed.
void close_due(shard_ptr self, int64_t now) {
  auto& st = self->state;
  if (st.closing.empty() || st.closing.begin()->first > now)
    return;
  std::map<caf::actor, std::vector<series_view>> out;
  std::vector<series_view> exported;
  bool exporting = static_cast<bool>(st.cfg.exporter);
  auto stale_before = now - static_cast<int64_t>(st.cfg.staleness_ms);
  uint64_t closed = 0;
  while (!st.closing.empty() && st.closing.begin()->first <= now) {
    auto due = std::move(st.closing.begin()->second);
    st.closing.erase(st.closing.begin());
    for (auto& o : due) {
      auto& state = o.entry->state;
      auto quantiles = state.kind == kind::histogram && st.cfg.rules
                         ? st.cfg.rules->quantiles(state.rule)
                         : std::vector<double>{};
      state.close(o.start, quantiles);
      state.forget_inputs(stale_before);
      ++closed;
      auto i = st.subscribers.end();
      if (!st.subscribers.empty())
        i = st.subscribers.find(std::string{o.entry->key});
      if (i == st.subscribers.end() && !exporting)
        continue;
      series_view v;
      v.key = o.entry->key;
      v.node = st.cfg.node_name;
      v.slice = o.entry->slice;
      if (auto* sl = st.hosted(o.entry->slice))
        v.epoch = sl->epoch;
      state.fill(v);
      if (i != st.subscribers.end())
        for (auto& sub : i->second)
          out[sub].push_back(v);
      if (exporting)
        exported.push_back(std::move(v));
    }
  }
  if (!exported.empty())
    caf::anon_send(st.cfg.exporter, window_atom::value, std::move(exported));
  st.cfg.counters->windows_closed += closed;
  for (auto& [sub, views] : out)
    caf::anon_send(sub, window_atom::value, std::move(views));
}

/// Ticks fall on multiples of tick_ms of the wall clock, so that every shard of a node
/// closes a window at the same moment and subscribers get its series together.
void schedule_tick(shard_ptr self) {
  auto tick = static_cast<int64_t>(self->state.cfg.tick_ms);
  auto now = wire::now_ms();
  self->delayed_send(self, std::chrono::milliseconds(tick - now % tick + 1),
                     tick_atom::value);
}

shard_actor::behavior_type shard_behavior(shard_ptr self, shard_config cfg) {
  self->state.cfg = std::move(cfg);
  self->state.apply_table(self->state.cfg.initial);
  self->state.cfg.initial = assignment_table{};
  auto timeout = std::chrono::milliseconds(self->state.cfg.request_timeout_ms);
  self->request(self->state.cfg.directory, timeout, subscribe_atom::value,
                caf::actor_cast<caf::actor>(self))
    .then([self](assignment_table& t) { self->state.apply_table(t); },
          [self](caf::error& err) {
            // Without a table the shard hosts nothing; writes get UNAVAILABLE.
            self->quit(err);
          });
  self->set_down_handler(
    [self](caf::down_msg& msg) { self->state.drop_subscriber(msg.source); });
  schedule_tick(self);
  return {
    [self](write_atom, shard_write& w) -> shard_write_result {
      auto& st = self->state;
      apply_context ctx;
      ctx.now_ms = st.now();
      ctx.lateness_ms = st.cfg.lateness_ms;
      ctx.accuracy = st.cfg.accuracy;
      ctx.staleness_ms = st.cfg.staleness_ms;
      if (st.cfg.rules && st.cfg.inputs && st.cfg.rules->load()->has_input_limits()) {
        if (!st.inputs)
          st.inputs = std::make_unique<input_tracker>(st.cfg.inputs, st.cfg.rules);
        ctx.gate = st.inputs.get();
      }
      // A tick may queue behind writes under load: close what is due first, so no
      // sample lands in a window that should have closed.
      close_due(self, ctx.now_ms);
      shard_write_result res;
      uint64_t created = 0;
      st.opened.clear();
      for (auto& r : w.ranges) {
        auto* sl = st.hosted(r.slice);
        if (sl == nullptr || sl->epoch != r.epoch) {
          if (res.code == errc::none) {
            res.code = errc::unavailable;
            res.message = "slice " + std::to_string(r.slice)
                          + " is not served here at epoch "
                          + std::to_string(r.epoch);
          }
          continue;
        }
        auto before = sl->series_count();
        auto out = sl->apply(w, r, ctx, st.opened);
        created += sl->series_count() - before;
        res.applied += out.applied;
        res.late += out.late;
        if (out.duplicate)
          ++res.duplicate_ranges;
        if (out.code != errc::none && res.code == errc::none) {
          res.code = out.code;
          res.message = std::move(out.message);
        }
      }
      for (auto& o : st.opened) {
        auto at = o.start + static_cast<int64_t>(o.entry->state.window_ms)
                  + static_cast<int64_t>(st.cfg.lateness_ms);
        st.closing[at].push_back(o);
      }
      if (created > 0)
        st.cfg.counters->series += created;
      if (res.applied > 0)
        st.cfg.counters->samples_applied += res.applied;
      if (res.late > 0)
        st.cfg.counters->samples_late += res.late;
      return res;
    },
    [self](read_atom, key_route& k) -> caf::result<series_view> {
      auto* sl = self->state.hosted(k.slice);
      if (sl == nullptr)
        return make_error(errc::unavailable, "slice " + std::to_string(k.slice)
                                               + " is not served by this node");
      return self->state.view_of(k, sl);
    },
    [self](read_atom) {
      // Every series with a closed window, and the slices' sizes, for /metrics.
      shard_scrape scrape;
      auto& out = scrape.series;
      for (auto& [id, sl] : self->state.slices) {
        scrape.slices.push_back(slice_stat{id, sl->epoch, sl->series_count()});
        sl->for_each([&](const series_entry& e) {
          if (e.state.last_closed.count == 0)
            return;
          series_view v;
          v.key = e.key;
          v.slice = id;
          v.node = self->state.cfg.node_name;
          v.epoch = sl->epoch;
          e.state.fill(v);
          out.push_back(std::move(v));
        });
      }
      return scrape;
    },
    [self](subscribe_atom, std::vector<key_route>& keys,
           caf::actor& sink) -> std::vector<series_view> {
      auto& st = self->state;
      std::vector<series_view> views;
      auto& mine = st.keys_of[sink.address()];
      if (mine.empty())
        self->monitor(sink);
      for (auto& k : keys) {
        auto& subs = st.subscribers[k.key];
        if (std::find(subs.begin(), subs.end(), sink) == subs.end()) {
          subs.push_back(sink);
          mine.push_back(k.key);
        }
        auto* sl = st.hosted(k.slice);
        if (sl != nullptr && sl->find(k.key) != nullptr)
          views.push_back(st.view_of(k, sl));
      }
      return views;
    },
    [self](update_atom, assignment_table& t) { self->state.apply_table(t); },
    [self](tick_atom) {
      auto& st = self->state;
      auto now = st.now();
      close_due(self, now);
      if (st.inputs && now >= st.next_expiry) {
        auto staleness = static_cast<int64_t>(st.cfg.staleness_ms);
        st.inputs->expire(now - staleness);
        st.next_expiry = now + std::max<int64_t>(staleness / 4, 1000);
      }
      schedule_tick(self);
    },
  };
}

} // namespace

shard_actor spawn_shard(caf::actor_system& sys, shard_config cfg) {
  return sys.spawn(shard_behavior, std::move(cfg));
}

} // namespace tether::series
