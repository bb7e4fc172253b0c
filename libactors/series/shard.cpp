#include "series/shard.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

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
  std::unordered_set<std::string> watched;
  std::map<caf::actor_addr, std::vector<std::string>> keys_of;
  /// Subscribed series that received samples in the open window.
  std::vector<series_entry*> touched;
  /// The window writes are currently counted in.
  int64_t open_window = 0;

  int64_t now() const {
    return cfg.clock ? cfg.clock() : wire::now_ms();
  }

  int64_t window_of(int64_t now) const {
    return now / cfg.window_ms;
  }

  slice_state* hosted(uint32_t slice) {
    auto i = slices.find(slice);
    return i == slices.end() ? nullptr : i->second.get();
  }

  void apply_table(const assignment_table& t) {
    if (t.version <= table_version)
      return;
    table_version = t.version;
    self_member = -1;
    for (size_t i = 0; i < t.members.size(); ++i)
      if (t.members[i].name == cfg.node_name)
        self_member = static_cast<int32_t>(i);
    uint32_t primaries = 0;
    uint32_t before = static_cast<uint32_t>(slices.size());
    for (uint32_t s = 0; s < t.slices.size(); ++s) {
      if (shard_of(s, cfg.shard_count) != cfg.index)
        continue;
      auto& a = t.slices[s];
      if (a.primary == self_member && self_member >= 0) {
        auto& ptr = slices[s];
        if (!ptr) {
          ptr = std::make_unique<slice_state>(s);
          ptr->watched = &watched;
        }
        ptr->epoch = a.epoch;
        ++primaries;
      } else {
        // Losing a slice without a handoff happens only on a directory decision;
        // planned moves transfer the state first (cluster issue).
        if (auto* sl = hosted(s)) {
          cfg.counters->series -= sl->series_count();
          touched.erase(std::remove_if(touched.begin(), touched.end(),
                                       [s](series_entry* e) {
                                         return e->slice == s;
                                       }),
                        touched.end());
          slices.erase(s);
        }
      }
    }
    cfg.counters->primary_slices += primaries;
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
      if (vec.empty()) {
        subscribers.erase(j);
        watched.erase(key);
        for (auto& [id, sl] : slices)
          if (auto* e = sl->find(key))
            e->subscribed = false;
      }
    }
    keys_of.erase(i);
  }
};

using shard_ptr = shard_actor::stateful_pointer<shard_state>;

void schedule_tick(shard_ptr self) {
  auto w = static_cast<int64_t>(self->state.cfg.window_ms);
  auto now = self->state.now();
  auto next = (now / w + 1) * w;
  self->delayed_send(self, std::chrono::milliseconds(next - now), tick_atom::value);
}

/// Emits one update per subscriber for the open window, whose samples are all in
/// `touched`, and opens the window of `now`. Runs when a tick finds the window over,
/// and before a write that belongs to a later window: under load a tick may queue
/// behind writes, and the first write of the next window must not hide the last one's
/// changes.
void close_window(shard_ptr self, int64_t now_window) {
  auto& st = self->state;
  auto closing = st.open_window;
  st.open_window = now_window;
  if (st.touched.empty())
    return;
  auto w = static_cast<int64_t>(st.cfg.window_ms);
  std::map<caf::actor, std::vector<series_view>> out;
  for (auto* e : st.touched) {
    auto i = st.subscribers.find(e->key);
    if (i == st.subscribers.end())
      continue;
    series_view v;
    v.key = e->key;
    v.node = st.cfg.node_name;
    v.slice = e->slice;
    if (auto* sl = st.hosted(e->slice))
      v.epoch = sl->epoch;
    e->state.fill(v);
    for (auto& sub : i->second)
      out[sub].push_back(v);
  }
  st.touched.clear();
  for (auto& [sub, views] : out)
    caf::anon_send(sub, window_atom::value, closing * w, (closing + 1) * w,
                   std::move(views));
}

shard_actor::behavior_type shard_behavior(shard_ptr self, shard_config cfg) {
  self->state.cfg = std::move(cfg);
  self->state.apply_table(self->state.cfg.initial);
  self->state.open_window = self->state.window_of(self->state.now());
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
      shard_write_result res;
      auto window = st.window_of(self->state.now());
      if (window != st.open_window)
        close_window(self, window);
      uint64_t created = 0;
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
        auto out = sl->apply(w, r, window, st.touched);
        created += sl->series_count() - before;
        res.applied += out.applied;
        if (out.duplicate)
          ++res.duplicate_ranges;
        if (out.code != errc::none && res.code == errc::none) {
          res.code = out.code;
          res.message = std::move(out.message);
        }
      }
      if (created > 0)
        st.cfg.counters->series += created;
      if (res.applied > 0)
        st.cfg.counters->samples_applied += res.applied;
      return res;
    },
    [self](read_atom, key_route& k) -> caf::result<series_view> {
      auto* sl = self->state.hosted(k.slice);
      if (sl == nullptr)
        return make_error(errc::unavailable, "slice " + std::to_string(k.slice)
                                               + " is not served by this node");
      return self->state.view_of(k, sl);
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
        st.watched.insert(k.key);
        auto* sl = st.hosted(k.slice);
        if (sl == nullptr)
          continue;
        if (auto* e = sl->find(k.key)) {
          e->subscribed = true;
          views.push_back(st.view_of(k, sl));
        }
      }
      return views;
    },
    [self](update_atom, assignment_table& t) { self->state.apply_table(t); },
    [self](tick_atom) {
      auto now_window = self->state.window_of(self->state.now());
      if (now_window != self->state.open_window)
        close_window(self, now_window);
      schedule_tick(self);
    },
  };
}

} // namespace

shard_actor spawn_shard(caf::actor_system& sys, shard_config cfg) {
  return sys.spawn(shard_behavior, std::move(cfg));
}

} // namespace tether::series
