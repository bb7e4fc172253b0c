#include "series/shard.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <unordered_map>
#include <variant>

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

/// A reply that waits for parts of its request handled elsewhere: buffered while a
/// slice's export is under way, or forwarded to where a slice went. Delivered once
/// the last part is in; the handler that makes it holds one part until it returns.
template <class T>
struct pending_reply {
  caf::typed_response_promise<T> promise;
  T value;
  caf::error error; ///< delivered instead of `value` if set
  size_t outstanding = 1;

  void release() {
    if (--outstanding > 0)
      return;
    if (error)
      promise.deliver(std::move(error));
    else
      promise.deliver(std::move(value));
  }
};

using pending_write = pending_reply<shard_write_result>;
using pending_subscribe = pending_reply<std::vector<series_view>>;

/// Folds the result of one part of a shard write into the whole: counts add up, the
/// first failure stays.
void merge(shard_write_result& into, shard_write_result&& part) {
  into.applied += part.applied;
  into.late += part.late;
  into.duplicate_ranges += part.duplicate_ranges;
  if (into.code == errc::none && part.code != errc::none) {
    into.code = part.code;
    into.message = std::move(part.message);
  }
}

void merge(std::vector<series_view>& into, std::vector<series_view>&& part) {
  into.insert(into.end(), std::make_move_iterator(part.begin()),
              std::make_move_iterator(part.end()));
}

/// The samples of range `r` of `w` as a write of their own, keys included, with one
/// range at `epoch`.
shard_write part_of(const shard_write& w, const slice_range& r, uint64_t epoch) {
  shard_write out;
  out.producer = w.producer;
  out.sequence = w.sequence;
  out.samples.reserve(r.end - r.begin);
  for (auto i = r.begin; i < r.end; ++i) {
    auto s = w.samples[i];
    auto key = w.key(s);
    s.key_offset = static_cast<uint32_t>(out.keys.size());
    out.keys.append(key.data(), key.size());
    out.samples.push_back(s);
  }
  out.ranges.push_back(
    slice_range{r.slice, epoch, 0, static_cast<uint32_t>(out.samples.size())});
  return out;
}

/// Items a slice holds back while its export is under way, in arrival order.
struct buffered_write {
  shard_write part; ///< one range, at the epoch it arrived with
  std::shared_ptr<pending_write> reply;
};

struct buffered_read {
  key_route key;
  caf::typed_response_promise<series_view> reply;
};

struct buffered_subscribe {
  std::vector<key_route> keys; ///< all of the exported slice
  caf::actor sink;
  std::shared_ptr<pending_subscribe> reply;
};

using buffered_item = std::variant<buffered_write, buffered_read, buffered_subscribe>;

/// A slice frozen for its export.
struct export_job {
  uint64_t from_epoch = 0; ///< the slice's epoch here
  uint64_t new_epoch = 0;
  shard_import_actor dest;
  std::vector<buffered_item> items;
  uint64_t buffered_samples = 0;
};

/// Where a slice went: requests for it at its old or its new epoch go there.
struct move_record {
  shard_import_actor dest;
  uint64_t from_epoch = 0;
  uint64_t epoch = 0;

  bool forwards(uint64_t e) const noexcept {
    return e == from_epoch || e == epoch;
  }
};

/// The subscribers of one output key, and the key's slice.
struct subscription {
  uint32_t slice = 0;
  std::vector<caf::actor> sinks;
};

struct shard_state {
  static inline const char* name = "tether.shard";

  shard_config cfg;
  int32_t self_member = -1;
  uint64_t table_version = 0;
  /// The latest table's assignments, by slice id.
  std::vector<slice_assignment> assignments;
  /// Slices this shard serves as primary, by slice id.
  std::unordered_map<uint32_t, std::unique_ptr<slice_state>> slices;
  /// Slices being exported (frozen), and slices moved away from here.
  std::unordered_map<uint32_t, export_job> exporting;
  std::unordered_map<uint32_t, move_record> moved_to;
  /// Subscribers per output key, and the keys each subscriber holds.
  std::unordered_map<std::string, subscription> subscribers;
  std::map<caf::actor_addr, std::vector<std::string>> keys_of;
  /// Open windows by the time they close (end + lateness): every (slice, window
  /// length, start) is scheduled once, when a first sample opens it, and closed once
  /// for all series of that length in the slice.
  std::map<int64_t, std::vector<opened_window>> closing;
  std::vector<opened_window> opened; ///< scratch of the write handler
  /// Input series tracked against the limits (only while a limit is configured).
  std::unique_ptr<input_tracker> inputs;
  int64_t next_expiry = 0;

  int64_t now() const {
    return cfg.clock ? cfg.clock() : wire::now_ms();
  }

  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(cfg.request_timeout_ms);
  }

  slice_state* hosted(uint32_t slice) {
    auto i = slices.find(slice);
    return i == slices.end() ? nullptr : i->second.get();
  }

  export_job* export_of(uint32_t slice) {
    if (exporting.empty())
      return nullptr;
    auto i = exporting.find(slice);
    return i == exporting.end() ? nullptr : &i->second;
  }

  move_record* move_of(uint32_t slice) {
    if (moved_to.empty())
      return nullptr;
    auto i = moved_to.find(slice);
    return i == moved_to.end() ? nullptr : &i->second;
  }

  apply_context context() {
    apply_context ctx;
    ctx.now_ms = now();
    ctx.lateness_ms = cfg.lateness_ms;
    ctx.accuracy = cfg.accuracy;
    ctx.staleness_ms = cfg.staleness_ms;
    if (cfg.rules && cfg.inputs && cfg.rules->load()->has_input_limits()) {
      if (!inputs)
        inputs = std::make_unique<input_tracker>(cfg.inputs, cfg.rules);
      ctx.gate = inputs.get();
    }
    return ctx;
  }

  /// Schedules the close of each window at its end + lateness.
  void schedule(const std::vector<opened_window>& windows) {
    for (auto& o : windows) {
      auto at = o.start + static_cast<int64_t>(o.window_ms)
                + static_cast<int64_t>(cfg.lateness_ms);
      closing[at].push_back(o);
    }
  }

  /// Removes the windows of slice `s` from the close schedule.
  void unschedule(uint32_t s) {
    for (auto i = closing.begin(); i != closing.end();) {
      auto& vec = i->second;
      vec.erase(std::remove_if(vec.begin(), vec.end(),
                               [s](const opened_window& o) {
                                 return o.slice == s;
                               }),
                vec.end());
      i = vec.empty() ? closing.erase(i) : std::next(i);
    }
  }

  slice_state* install(uint32_t s, std::unique_ptr<slice_state> sl) {
    auto* ptr = sl.get();
    cfg.counters->series += sl->series_count();
    ++cfg.counters->primary_slices;
    slices.emplace(s, std::move(sl));
    return ptr;
  }

  void drop_slice(uint32_t s) {
    auto* sl = hosted(s);
    if (sl == nullptr)
      return;
    cfg.counters->series -= sl->series_count();
    --cfg.counters->primary_slices;
    unschedule(s);
    slices.erase(s);
  }

  /// Makes slice `s` follow the latest table, unless its export is under way.
  void decide(uint32_t s) {
    if (s >= assignments.size() || export_of(s) != nullptr)
      return;
    auto& a = assignments[s];
    if (auto* m = move_of(s)) {
      if (a.epoch <= m->epoch)
        return; // the table predates the move, or confirms it
      moved_to.erase(s);
    }
    auto* sl = hosted(s);
    if (sl != nullptr && a.epoch < sl->epoch)
      return; // the table predates the import of the slice
    if (self_member >= 0 && a.primary == self_member) {
      if (sl == nullptr)
        sl = install(s, std::make_unique<slice_state>(s));
      sl->epoch = a.epoch;
    } else {
      // Losing a slice without a handoff happens only on a directory decision;
      // planned moves transfer the state first (export_atom).
      drop_slice(s);
    }
  }

  void apply_table(assignment_table&& t) {
    if (t.version <= table_version)
      return;
    table_version = t.version;
    self_member = -1;
    for (size_t i = 0; i < t.members.size(); ++i)
      if (t.members[i].name == cfg.node_name)
        self_member = static_cast<int32_t>(i);
    assignments = std::move(t.slices);
    for (uint32_t s = 0; s < assignments.size(); ++s)
      if (shard_of(s, cfg.shard_count) == cfg.index)
        decide(s);
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

  /// The subscribers of the keys of slice `s`.
  std::vector<subscription_snapshot> subscriptions_of(uint32_t s) const {
    std::vector<subscription_snapshot> out;
    for (auto& [key, sub] : subscribers)
      if (sub.slice == s)
        out.push_back(subscription_snapshot{key, sub.sinks});
    return out;
  }

  void drop_subscriber(const caf::actor_addr& who) {
    auto i = keys_of.find(who);
    if (i == keys_of.end())
      return;
    for (auto& key : i->second) {
      auto j = subscribers.find(key);
      if (j == subscribers.end())
        continue;
      auto& vec = j->second.sinks;
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

using shard_ptr = shard_handoff_actor::stateful_pointer<shard_state>;

void add_subscriber(shard_ptr self, const std::string& key, uint32_t slice,
                    const caf::actor& sink) {
  auto& st = self->state;
  auto& mine = st.keys_of[sink.address()];
  if (mine.empty())
    self->monitor(sink);
  auto& sub = st.subscribers[key];
  sub.slice = slice;
  if (std::find(sub.sinks.begin(), sub.sinks.end(), sink) == sub.sinks.end()) {
    sub.sinks.push_back(sink);
    mine.push_back(key);
  }
}

/// Forgets the subscriptions to the keys of slice `s` (they went with its snapshot).
void remove_subscriptions(shard_ptr self, uint32_t s) {
  auto& st = self->state;
  for (auto i = st.subscribers.begin(); i != st.subscribers.end();) {
    if (i->second.slice != s) {
      ++i;
      continue;
    }
    for (auto& sink : i->second.sinks) {
      auto j = st.keys_of.find(sink.address());
      if (j == st.keys_of.end())
        continue;
      auto& keys = j->second;
      keys.erase(std::remove(keys.begin(), keys.end(), i->first), keys.end());
      if (keys.empty()) {
        st.keys_of.erase(j);
        self->demonitor(sink);
      }
    }
    i = st.subscribers.erase(i);
  }
}

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
      auto* sl = st.hosted(o.slice);
      if (sl == nullptr)
        continue;
      sl->close_windows(o.window_ms, o.start, [&](series_entry& e) {
        auto& state = e.state;
        auto quantiles = state.kind == kind::histogram && st.cfg.rules
                           ? st.cfg.rules->quantiles(state.rule)
                           : std::vector<double>{};
        state.close(o.start, quantiles);
        state.forget_inputs(stale_before);
        ++closed;
        auto i = st.subscribers.end();
        if (!st.subscribers.empty())
          i = st.subscribers.find(std::string{e.key()});
        if (i == st.subscribers.end() && !exporting)
          return;
        series_view v;
        v.key = e.key();
        v.node = st.cfg.node_name;
        v.slice = o.slice;
        v.epoch = sl->epoch;
        state.fill(v);
        if (i != st.subscribers.end())
          for (auto& sub : i->second.sinks)
            out[sub].push_back(v);
        if (exporting)
          exported.push_back(std::move(v));
      });
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

template <class T>
void need_reply(shard_ptr self, std::shared_ptr<pending_reply<T>>& reply) {
  if (reply)
    return;
  reply = std::make_shared<pending_reply<T>>();
  reply->promise = self->make_response_promise<T>();
}

void forward_write(shard_ptr self, const move_record& m, shard_write part,
                   std::shared_ptr<pending_write> reply) {
  auto slice = part.ranges.front().slice;
  self->request(m.dest, self->state.timeout(), write_atom::value, std::move(part))
    .then(
      [reply](shard_write_result& r) {
        merge(reply->value, std::move(r));
        reply->release();
      },
      [reply, slice](caf::error& err) {
        shard_write_result r;
        auto code = code_of(err);
        r.code = code == errc::internal ? errc::unavailable : code;
        r.message = "slice " + std::to_string(slice)
                    + " moved; its new shard did not answer: " + to_string(err);
        merge(reply->value, std::move(r));
        reply->release();
      });
}

/// Applies the ranges of `w` this shard serves, adding their outcome to `res`;
/// buffers those of a slice being exported and forwards those of a slice moved away,
/// as parts of `reply` (made when first needed).
void dispatch_write(shard_ptr self, const shard_write& w, shard_write_result& res,
                    std::shared_ptr<pending_write>& reply) {
  auto& st = self->state;
  auto ctx = st.context();
  // A tick may queue behind writes under load: close what is due first, so no
  // sample lands in a window that should have closed.
  close_due(self, ctx.now_ms);
  uint64_t created = 0;
  st.opened.clear();
  auto refuse = [&](const slice_range& r, const char* why) {
    if (res.code != errc::none)
      return;
    res.code = errc::unavailable;
    res.message = "slice " + std::to_string(r.slice) + why + std::to_string(r.epoch);
  };
  for (auto& r : w.ranges) {
    auto* sl = st.hosted(r.slice);
    if (sl != nullptr && sl->epoch == r.epoch) {
      if (auto* job = st.export_of(r.slice)) {
        auto n = r.end - r.begin;
        if (job->buffered_samples + n > st.cfg.handoff_buffer_limit) {
          refuse(r, " is being moved and holds back too many samples at epoch ");
          continue;
        }
        job->buffered_samples += n;
        need_reply(self, reply);
        ++reply->outstanding;
        job->items.emplace_back(buffered_write{part_of(w, r, r.epoch), reply});
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
      continue;
    }
    if (auto* m = st.move_of(r.slice); m != nullptr && m->forwards(r.epoch)) {
      need_reply(self, reply);
      ++reply->outstanding;
      forward_write(self, *m, part_of(w, r, m->epoch), reply);
      continue;
    }
    refuse(r, " is not served here at epoch ");
  }
  st.schedule(st.opened);
  if (created > 0)
    st.cfg.counters->series += created;
  if (res.applied > 0)
    st.cfg.counters->samples_applied += res.applied;
  if (res.late > 0)
    st.cfg.counters->samples_late += res.late;
}

/// Subscribes `sink` to the keys this shard serves or may serve, adding the views
/// of existing series to `views`; buffers the keys of a slice being exported and
/// forwards those of a slice moved away, as parts of `reply`.
void dispatch_subscribe(shard_ptr self, const std::vector<key_route>& keys,
                        const caf::actor& sink, std::vector<series_view>& views,
                        std::shared_ptr<pending_subscribe>& reply) {
  auto& st = self->state;
  std::map<uint32_t, std::vector<key_route>> elsewhere;
  for (auto& k : keys) {
    if (st.export_of(k.slice) != nullptr || st.move_of(k.slice) != nullptr) {
      elsewhere[k.slice].push_back(k);
      continue;
    }
    add_subscriber(self, k.key, k.slice, sink);
    auto* sl = st.hosted(k.slice);
    if (sl != nullptr && sl->find(k.key) != nullptr)
      views.push_back(st.view_of(k, sl));
  }
  for (auto& [slice, part] : elsewhere) {
    need_reply(self, reply);
    ++reply->outstanding;
    if (auto* job = st.export_of(slice)) {
      job->items.emplace_back(buffered_subscribe{std::move(part), sink, reply});
      continue;
    }
    self->request(st.move_of(slice)->dest, st.timeout(), subscribe_atom::value,
                  std::move(part), sink)
      .then(
        [reply](std::vector<series_view>& vs) {
          merge(reply->value, std::move(vs));
          reply->release();
        },
        [reply](caf::error& err) {
          if (!reply->error)
            reply->error = std::move(err);
          reply->release();
        });
  }
}

/// Handles an item held back during an export once the export has ended: as if it
/// arrived now.
void replay(shard_ptr self, buffered_item& item) {
  auto& st = self->state;
  if (auto* w = std::get_if<buffered_write>(&item)) {
    shard_write_result res;
    dispatch_write(self, w->part, res, w->reply);
    merge(w->reply->value, std::move(res));
    w->reply->release();
  } else if (auto* r = std::get_if<buffered_read>(&item)) {
    if (auto* m = st.move_of(r->key.slice))
      r->reply.delegate(m->dest, read_atom::value, std::move(r->key));
    else if (auto* sl = st.hosted(r->key.slice))
      r->reply.deliver(st.view_of(r->key, sl));
    else
      r->reply.deliver(make_error(errc::unavailable,
                                  "slice " + std::to_string(r->key.slice)
                                    + " is not served by this node"));
  } else {
    auto& sub = std::get<buffered_subscribe>(item);
    std::vector<series_view> views;
    dispatch_subscribe(self, sub.keys, sub.sink, views, sub.reply);
    merge(sub.reply->value, std::move(views));
    sub.reply->release();
  }
}

/// Ends the export of slice `s`: on success the slice is gone from here and requests
/// for it go to its new place; otherwise it thaws. Then the slice follows the latest
/// table and the items held back are handled in order.
void finish_export(shard_ptr self, uint32_t s, bool moved) {
  auto& st = self->state;
  auto i = st.exporting.find(s);
  if (i == st.exporting.end())
    return;
  auto job = std::move(i->second);
  st.exporting.erase(i);
  if (moved) {
    st.moved_to[s] = move_record{job.dest, job.from_epoch, job.new_epoch};
    remove_subscriptions(self, s);
    st.drop_slice(s);
  } else if (auto* sl = st.hosted(s)) {
    st.opened.clear();
    sl->open_windows(st.opened);
    st.schedule(st.opened);
  }
  st.decide(s);
  for (auto& item : job.items)
    replay(self, item);
}

shard_handoff_actor::behavior_type shard_behavior(shard_ptr self, shard_config cfg) {
  self->state.cfg = std::move(cfg);
  self->state.apply_table(std::move(self->state.cfg.initial));
  self->state.cfg.initial = assignment_table{};
  self->request(self->state.cfg.directory, self->state.timeout(), subscribe_atom::value,
                caf::actor_cast<caf::actor>(self))
    .then([self](assignment_table& t) { self->state.apply_table(std::move(t)); },
          [self](caf::error& err) {
            // Without a table the shard hosts nothing; writes get UNAVAILABLE.
            self->quit(err);
          });
  self->set_down_handler(
    [self](caf::down_msg& msg) { self->state.drop_subscriber(msg.source); });
  schedule_tick(self);
  return {
    [self](write_atom, shard_write& w) -> caf::result<shard_write_result> {
      shard_write_result res;
      std::shared_ptr<pending_write> reply;
      dispatch_write(self, w, res, reply);
      if (!reply)
        return res;
      merge(reply->value, std::move(res));
      auto promise = reply->promise;
      reply->release();
      return promise;
    },
    [self](read_atom, key_route& k) -> caf::result<series_view> {
      auto& st = self->state;
      if (auto* job = st.export_of(k.slice)) {
        auto promise = self->make_response_promise<series_view>();
        job->items.emplace_back(buffered_read{std::move(k), promise});
        return promise;
      }
      if (auto* m = st.move_of(k.slice))
        return self->delegate(m->dest, read_atom::value, std::move(k));
      auto* sl = st.hosted(k.slice);
      if (sl == nullptr)
        return make_error(errc::unavailable, "slice " + std::to_string(k.slice)
                                               + " is not served by this node");
      return st.view_of(k, sl);
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
          v.key = e.key();
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
           caf::actor& sink) -> caf::result<std::vector<series_view>> {
      std::vector<series_view> views;
      std::shared_ptr<pending_subscribe> reply;
      dispatch_subscribe(self, keys, sink, views, reply);
      if (!reply)
        return views;
      merge(reply->value, std::move(views));
      auto promise = reply->promise;
      reply->release();
      return promise;
    },
    [self](update_atom, assignment_table& t) { self->state.apply_table(std::move(t)); },
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
    [self](import_atom, slice_snapshot& snap) -> caf::result<uint64_t> {
      auto& st = self->state;
      auto s = snap.slice;
      auto refuse = [&](const std::string& why) {
        return make_error(errc::unavailable, "cannot import slice " + std::to_string(s)
                                               + " at epoch "
                                               + std::to_string(snap.epoch) + ": "
                                               + why);
      };
      if (shard_of(s, st.cfg.shard_count) != st.cfg.index)
        return refuse("it belongs to shard "
                      + std::to_string(shard_of(s, st.cfg.shard_count)));
      if (st.export_of(s) != nullptr)
        return refuse("its export from here is under way");
      if (auto* m = st.move_of(s); m != nullptr && m->epoch >= snap.epoch)
        return refuse("it moved away from here at epoch " + std::to_string(m->epoch));
      if (auto* sl = st.hosted(s)) {
        if (sl->epoch > snap.epoch)
          return refuse("it is served here at epoch " + std::to_string(sl->epoch));
        if (sl->epoch == snap.epoch && !sl->empty())
          return refuse("it is served here at that epoch already");
      }
      auto subscriptions = std::move(snap.subscribers);
      std::string why;
      auto sl = slice_state::restore(snap, why);
      if (!sl)
        return make_error(errc::internal, "invalid snapshot of " + why);
      st.moved_to.erase(s);
      st.drop_slice(s); // an empty or older copy
      auto n = sl->series_count();
      st.opened.clear();
      sl->open_windows(st.opened);
      st.install(s, std::move(sl));
      st.schedule(st.opened);
      for (auto& sub : subscriptions)
        for (auto& sink : sub.sinks)
          if (sink)
            add_subscriber(self, sub.key, s, sink);
      return static_cast<uint64_t>(n);
    },
    [self](abort_atom, uint32_t s, uint64_t epoch) {
      auto& st = self->state;
      auto* sl = st.hosted(s);
      if (sl == nullptr || sl->epoch != epoch || st.export_of(s) != nullptr)
        return;
      if (s < st.assignments.size() && st.self_member >= 0
          && st.assignments[s].primary == st.self_member
          && st.assignments[s].epoch >= epoch)
        return; // a table made it primary here: not the import's to undo
      st.drop_slice(s);
    },
    [self](export_atom, uint32_t s, uint64_t new_epoch,
           shard_import_actor& dest) -> caf::result<uint64_t> {
      auto& st = self->state;
      auto refuse = [&](const std::string& why) {
        return make_error(errc::unavailable,
                          "cannot export slice " + std::to_string(s) + ": " + why);
      };
      auto* sl = st.hosted(s);
      if (sl == nullptr)
        return refuse("it is not served here");
      if (st.export_of(s) != nullptr)
        return refuse("its export is under way");
      if (new_epoch <= sl->epoch)
        return refuse("epoch " + std::to_string(new_epoch)
                      + " is not above its epoch " + std::to_string(sl->epoch));
      if (!dest)
        return refuse("no destination");
      // Windows already due close here; the others close at the destination.
      close_due(self, st.now());
      st.unschedule(s);
      auto snap = sl->snapshot(new_epoch);
      snap.subscribers = st.subscriptions_of(s);
      st.exporting.emplace(s, export_job{sl->epoch, new_epoch, dest, {}, 0});
      auto promise = self->make_response_promise<uint64_t>();
      self->request(dest, st.timeout(), import_atom::value, std::move(snap))
        .then(
          [self, s, promise](uint64_t n) mutable {
            finish_export(self, s, true);
            promise.deliver(n);
          },
          [self, s, new_epoch, dest, promise](caf::error& err) mutable {
            finish_export(self, s, false);
            // The import may still arrive: withdraw it (messages between two
            // actors stay in order).
            if (err == caf::sec::request_timeout)
              self->send(dest, abort_atom::value, s, new_epoch);
            promise.deliver(std::move(err));
          });
      return promise;
    },
  };
}

} // namespace

shard_handoff_actor spawn_shard(caf::actor_system& sys, shard_config cfg) {
  return sys.spawn(shard_behavior, std::move(cfg));
}

} // namespace tether::series
