#include "series/shard.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>
#include <variant>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "replication/follower_cursor.hpp"
#include "replication/primary_stream.hpp"
#include "series/input_tracker.hpp"
#include "series/slice_state.hpp"
#include "tether/tether.hpp"
#include "wire/codec.hpp"

namespace tether::series {

namespace {

using replication::follower_cursor;
using replication::primary_stream;
using link_state = primary_stream::link;

/// A reply that waits for parts of its request handled elsewhere: buffered while a
/// slice's export is under way, forwarded to where a slice went, or waiting for a
/// write quorum. Delivered once the last part is in; the handler that makes it
/// holds one part until it returns.
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

/// Appends the samples of range `r` of `w` to `out` as one more range, keys copied;
/// returns the range's index in `out.ranges`.
uint32_t append_range(shard_write& out, const shard_write& w, const slice_range& r) {
  auto begin = static_cast<uint32_t>(out.samples.size());
  out.samples.reserve(out.samples.size() + (r.end - r.begin));
  for (auto i = r.begin; i < r.end; ++i) {
    auto s = w.samples[i];
    auto key = w.key(s);
    s.key_offset = static_cast<uint32_t>(out.keys.size());
    out.keys.append(key.data(), key.size());
    out.samples.push_back(s);
  }
  out.ranges.push_back(
    slice_range{r.slice, r.epoch, begin, static_cast<uint32_t>(out.samples.size())});
  return static_cast<uint32_t>(out.ranges.size() - 1);
}

/// The samples of range `r` of `w` as a write of their own, keys included, with one
/// range at `epoch`.
shard_write part_of(const shard_write& w, const slice_range& r, uint64_t epoch) {
  shard_write out;
  out.producer = w.producer;
  out.sequence = w.sequence;
  append_range(out, w, r);
  out.ranges.front().epoch = epoch;
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
  /// A replicated slice stays here as a follower of `dest` once it moved: where
  /// the snapshot left its stream.
  bool replicated = false;
  stream_position position;
  uint64_t committed = 0;
  std::vector<window_mark> unconfirmed;
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

/// A slice this shard follows: its state and its place in the primary's stream.
struct follower_replica {
  std::unique_ptr<slice_state> state;
  follower_cursor cursor;
};

/// What one handler produced for one follower shard: sent as one message.
struct outbound {
  replica_batch batch;
  std::vector<uint32_t> slices; ///< slices with items (or commit news) in it
};

/// How long an idle follower waits before its next seed.
constexpr int64_t seed_retry_ms = 1000;

struct shard_state {
  static inline const char* name = "tether.shard";

  shard_config cfg;
  int32_t self_member = -1;
  uint64_t table_version = 0;
  uint32_t rf = 1; ///< the latest table's replication factor
  std::vector<member> members; ///< the latest table's members
  /// The latest table's assignments, by slice id.
  std::vector<slice_assignment> assignments;
  /// Slices this shard serves as primary, by slice id.
  std::unordered_map<uint32_t, std::unique_ptr<slice_state>> slices;
  /// The replication streams of the replicated slices among them.
  std::unordered_map<uint32_t, std::unique_ptr<primary_stream>> streams;
  /// Slices this shard follows (seeded follower replicas).
  std::unordered_map<uint32_t, follower_replica> replicas;
  /// Shards of the other connected nodes, by name and index.
  std::map<std::string, std::vector<caf::actor>> peers;
  std::set<caf::actor_addr> watched; ///< follower shards monitored
  std::map<caf::actor, outbound> outbox;
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
  std::vector<opened_window> ignored; ///< scratch of follower applies
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

  primary_stream* stream_of(uint32_t slice) {
    if (streams.empty())
      return nullptr;
    auto i = streams.find(slice);
    return i == streams.end() ? nullptr : i->second.get();
  }

  follower_replica* replica_of(uint32_t slice) {
    if (replicas.empty())
      return nullptr;
    auto i = replicas.find(slice);
    return i == replicas.end() ? nullptr : &i->second;
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

  /// The latest table's epoch for slice `s` (0 without a table).
  uint64_t table_epoch(uint32_t s) const {
    return s < assignments.size() ? assignments[s].epoch : 0;
  }

  /// Whether the latest table names this node the primary of `s`.
  bool named_primary(uint32_t s) const {
    return self_member >= 0 && s < assignments.size()
           && assignments[s].primary == self_member;
  }

  /// Whether the table replicates `a`: its replica set needs more than one replica
  /// for a write quorum.
  bool replicated(const slice_assignment& a) const {
    return replication::write_quorum(1 + a.followers.size(), rf) > 1;
  }

  /// The other members of `a`'s replica set (primary and followers but this node).
  std::vector<std::string> others(const slice_assignment& a) const {
    std::vector<std::string> out;
    auto add = [&](int32_t m) {
      if (m < 0 || m == self_member || static_cast<size_t>(m) >= members.size())
        return;
      auto& name = members[static_cast<size_t>(m)].name;
      if (std::find(out.begin(), out.end(), name) == out.end())
        out.push_back(name);
    };
    add(a.primary);
    for (auto f : a.followers)
      add(f);
    return out;
  }

  /// The shard of member `name` that hosts slice `s`; invalid if unreachable.
  caf::actor handle_for(const std::string& name, uint32_t s) const {
    auto i = peers.find(name);
    if (i == peers.end() || i->second.empty())
      return {};
    return i->second[shard_of(s, static_cast<uint32_t>(i->second.size()))];
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

  /// Takes a hosted slice out (its stream ends, its windows leave the schedule).
  std::unique_ptr<slice_state> uninstall(uint32_t s) {
    auto i = slices.find(s);
    if (i == slices.end())
      return nullptr;
    auto sl = std::move(i->second);
    slices.erase(i);
    cfg.counters->series -= sl->series_count();
    --cfg.counters->primary_slices;
    unschedule(s);
    streams.erase(s);
    return sl;
  }

  void drop_slice(uint32_t s) {
    uninstall(s);
  }

  /// Closes the windows of length `window_ms` at `start` of every series of `sl`
  /// at `now`, calling `f(series_entry&)` for each; the same on every replica.
  template <class F>
  uint64_t close_windows(slice_state& sl, uint32_t window_ms, int64_t start,
                         int64_t now, F&& f) {
    auto stale_before = now - static_cast<int64_t>(cfg.staleness_ms);
    uint64_t closed = 0;
    sl.close_windows(window_ms, start, [&](series_entry& e) {
      auto& state = e.state;
      auto quantiles = state.kind == kind::histogram && cfg.rules
                         ? cfg.rules->quantiles(state.rule)
                         : std::vector<double>{};
      state.close(start, quantiles);
      state.forget_inputs(stale_before);
      ++closed;
      f(e);
    });
    return closed;
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

  /// Where this shard's replica of `s` stands.
  replica_position position_of(uint32_t s) {
    replica_position p;
    p.slice = s;
    if (auto* sl = hosted(s)) {
      p.primary = true;
      p.seeded = true;
      if (auto* st = stream_of(s)) {
        p.epoch = st->last().epoch;
        p.seq = st->last().seq;
      } else {
        p.epoch = sl->epoch;
      }
    } else if (auto* rep = replica_of(s)) {
      p.seeded = true;
      p.epoch = rep->cursor.last.epoch;
      p.seq = rep->cursor.last.seq;
    } else {
      p.primary = named_primary(s);
    }
    return p;
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

/// Sends closed windows to the subscribers of their keys and to the exporter.
void emit(shard_ptr self, std::vector<series_view>&& views) {
  auto& st = self->state;
  if (views.empty())
    return;
  std::map<caf::actor, std::vector<series_view>> out;
  if (!st.subscribers.empty())
    for (auto& v : views)
      if (auto i = st.subscribers.find(v.key); i != st.subscribers.end())
        for (auto& sub : i->second.sinks)
          out[sub].push_back(v);
  if (st.cfg.exporter)
    caf::anon_send(st.cfg.exporter, window_atom::value, std::move(views));
  for (auto& [sub, vs] : out)
    caf::anon_send(sub, window_atom::value, std::move(vs));
}

// -- replication: the primary's side ---------------------------------------------

/// Queues `it` (and, for a write item, the samples of `r` of `w`) for every follower
/// of `stream` that is streamed to; `flush` sends the queue.
void send_item(shard_ptr self, primary_stream& stream, const replica_item& it,
               const shard_write* w = nullptr, const slice_range* r = nullptr);

void send_batch(shard_ptr self, const caf::actor& shard, outbound&& ob);

/// Sends every follower shard what this handler queued for it, one message each.
void flush(shard_ptr self) {
  auto& st = self->state;
  if (st.outbox.empty())
    return;
  auto box = std::move(st.outbox);
  st.outbox.clear();
  for (auto& [shard, ob] : box)
    send_batch(self, shard, std::move(ob));
}

outbound& outbox_of(shard_ptr self, const caf::actor& shard, uint32_t slice) {
  auto& ob = self->state.outbox[shard];
  if (std::find(ob.slices.begin(), ob.slices.end(), slice) == ob.slices.end())
    ob.slices.push_back(slice);
  return ob;
}

void send_item(shard_ptr self, primary_stream& stream, const replica_item& it,
               const shard_write* w, const slice_range* r) {
  for (auto& f : stream.followers()) {
    if (!f.shard || f.state == link_state::idle)
      continue;
    auto* ob = &outbox_of(self, f.shard, stream.slice());
    auto& bw = ob->batch.write;
    if (w != nullptr && !bw.ranges.empty()
        && (bw.producer != w->producer || bw.sequence != w->sequence)) {
      // One batch carries the ranges of one shard write: send what came before.
      auto done = std::move(*ob);
      self->state.outbox.erase(f.shard);
      send_batch(self, f.shard, std::move(done));
      ob = &outbox_of(self, f.shard, stream.slice());
    }
    auto copy = it;
    if (w != nullptr) {
      ob->batch.write.producer = w->producer;
      ob->batch.write.sequence = w->sequence;
      copy.range = append_range(ob->batch.write, *w, *r);
    }
    ob->batch.items.push_back(std::move(copy));
  }
}

void seed(shard_ptr self, uint32_t s, primary_stream& stream,
          primary_stream::follower& f);

void on_ack(shard_ptr self, const caf::actor& shard, const replica_ack& a) {
  auto& st = self->state;
  auto* stream = st.stream_of(a.slice);
  if (stream == nullptr)
    return;
  primary_stream::follower* f = nullptr;
  for (auto& x : stream->followers())
    if (x.shard == shard)
      f = &x;
  if (f == nullptr)
    return;
  switch (a.code) {
    case ack_code::ok:
      stream->acked(*f, a.seq);
      break;
    case ack_code::stale:
      // A replica knows a newer configuration: stop acknowledging.
      if (a.epoch > stream->epoch())
        stream->fence(a.epoch);
      break;
    case ack_code::gap:
    case ack_code::unseeded:
      // Refusals of items the latest seed covers are expected: they were sent
      // before it or overtook it.
      if (f->state == link_state::seeding || a.item <= f->seeded_through)
        break;
      if (a.code == ack_code::unseeded)
        f->acked = 0;
      seed(self, a.slice, *stream, *f);
      break;
    case ack_code::ahead:
      // A replica holds more of this epoch's stream than this primary: it lost
      // state; only a new table may make it primary again.
      stream->fence(stream->epoch() + 1);
      break;
  }
}

/// A follower did not answer (in time), or its shard is gone.
void on_silence(shard_ptr self, const caf::actor& shard, uint32_t s) {
  auto& st = self->state;
  auto* stream = st.stream_of(s);
  if (stream == nullptr)
    return;
  for (auto& f : stream->followers())
    if (f.shard == shard && f.state != link_state::idle) {
      f.retry_at = st.now() + seed_retry_ms;
      stream->lost(f);
    }
}

void send_batch(shard_ptr self, const caf::actor& shard, outbound&& ob) {
  auto& st = self->state;
  for (auto s : ob.slices)
    if (auto* stream = st.stream_of(s))
      ob.batch.commits.push_back(commit_note{s, stream->epoch(), stream->committed()});
  auto slices = std::move(ob.slices);
  self
    ->request(caf::actor_cast<shard_replica_actor>(shard), st.timeout(),
              replicate_atom::value, std::move(ob.batch))
    .then(
      [self, shard](std::vector<replica_ack>& acks) {
        for (auto& a : acks)
          on_ack(self, shard, a);
        flush(self);
      },
      [self, shard, slices](caf::error&) {
        for (auto s : slices)
          on_silence(self, shard, s);
        flush(self);
      });
}

/// Sends `f` a snapshot of slice `s` at the stream's position; items follow it.
void seed(shard_ptr self, uint32_t s, primary_stream& stream,
          primary_stream::follower& f) {
  auto& st = self->state;
  auto* sl = st.hosted(s);
  if (sl == nullptr || !f.shard) {
    stream.lost(f);
    return;
  }
  auto snap = sl->snapshot(stream.epoch());
  snap.position = stream.last();
  snap.committed = stream.committed();
  snap.unconfirmed = stream.unconfirmed();
  f.state = link_state::seeding;
  f.seeded_through = stream.last().seq;
  auto shard = f.shard;
  auto through = f.seeded_through;
  // Finds the follower again if nothing replaced this seed meanwhile.
  auto current = [self, s, shard, through]() -> primary_stream::follower* {
    auto* stream = self->state.stream_of(s);
    if (stream == nullptr)
      return nullptr;
    for (auto& x : stream->followers())
      if (x.shard == shard && x.state == link_state::seeding
          && x.seeded_through == through)
        return &x;
    return nullptr;
  };
  self
    ->request(caf::actor_cast<shard_replica_actor>(shard), st.timeout(),
              seed_atom::value, std::move(snap))
    .then(
      [self, s, current](replica_ack& a) {
        auto* f = current();
        if (f == nullptr)
          return;
        auto* stream = self->state.stream_of(s);
        switch (a.code) {
          case ack_code::ok:
            f->state = link_state::live;
            stream->acked(*f, a.seq);
            break;
          case ack_code::stale:
            if (a.epoch > stream->epoch())
              stream->fence(a.epoch);
            f->retry_at = self->state.now() + seed_retry_ms;
            stream->lost(*f);
            break;
          case ack_code::ahead:
            stream->fence(stream->epoch() + 1);
            stream->lost(*f);
            break;
          default:
            f->retry_at = self->state.now() + seed_retry_ms;
            stream->lost(*f);
        }
        flush(self);
      },
      [self, s, current](caf::error&) {
        auto* f = current();
        if (f == nullptr)
          return;
        f->retry_at = self->state.now() + seed_retry_ms;
        self->state.stream_of(s)->lost(*f);
      });
}

/// Gives every follower of `stream` its shard (from the latest node list); a
/// follower whose shard changed starts over: streamed to at once with `probe` (it
/// is expected to hold the stream up to the stream's last item), seeded otherwise.
void relink(shard_ptr self, uint32_t s, primary_stream& stream, bool probe) {
  auto& st = self->state;
  for (auto& f : stream.followers()) {
    auto h = st.handle_for(f.name, s);
    if (h == f.shard)
      continue;
    f.shard = h;
    f.acked = 0;
    f.retry_at = 0;
    f.state = link_state::idle;
    if (!h)
      continue;
    if (st.watched.insert(h.address()).second)
      self->monitor(h);
    if (probe)
      f.state = link_state::live;
    else
      seed(self, s, stream, f);
  }
  stream.check_quorum();
}

/// A new primary's first item: followers that hold the stream up to its position
/// accept it, the others are seeded; writes wait until a quorum has it. The
/// windows of close marks nobody confirmed are emitted once it is committed.
void start_leveling(shard_ptr self, uint32_t s) {
  auto& st = self->state;
  auto* stream = st.stream_of(s);
  auto* sl = st.hosted(s);
  if (stream == nullptr || sl == nullptr)
    return;
  auto it = stream->append_barrier(st.now());
  send_item(self, *stream, it);
  auto& marks = stream->unconfirmed();
  if (marks.empty())
    return;
  bool exporting = static_cast<bool>(st.cfg.exporter);
  std::vector<series_view> views;
  sl->for_each([&](const series_entry& e) {
    auto& state = e.state;
    if (state.last_closed.count == 0)
      return;
    bool marked = false;
    for (auto& m : marks)
      marked = marked
               || (m.window_ms == state.window_ms && m.start == state.last_closed.start);
    if (!marked)
      return;
    if (!exporting && st.subscribers.count(std::string{e.key()}) == 0)
      return;
    series_view v;
    v.key = e.key();
    v.node = st.cfg.node_name;
    v.slice = s;
    v.epoch = sl->epoch;
    state.fill(v);
    views.push_back(std::move(v));
  });
  stream->wait(it.seq, true, [self, views](bool ok) mutable {
    if (ok)
      emit(self, std::move(views));
  });
}

/// Makes the replication stream of hosted slice `s` match assignment `a`.
primary_stream* configure_stream(shard_ptr self, uint32_t s, const slice_assignment& a,
                                 uint64_t epoch, stream_position last,
                                 uint64_t committed, bool probe) {
  auto& st = self->state;
  auto names = st.others(a);
  auto quorum = replication::write_quorum(1 + names.size(), st.rf);
  auto& ptr = st.streams[s];
  bool fresh = !ptr;
  if (fresh)
    ptr = std::make_unique<primary_stream>(s, epoch, last, committed, quorum);
  ptr->set_epoch(epoch);
  ptr->set_followers(names, quorum);
  relink(self, s, *ptr, probe && fresh);
  return ptr.get();
}

/// Closes every window due at `now`, oldest first, and sends each subscriber one
/// message with the windows of its keys that closed. Windows of a replicated slice
/// are closed through a close mark in its stream and emitted once a write quorum
/// applied the mark.
void close_due(shard_ptr self, int64_t now) {
  auto& st = self->state;
  if (st.closing.empty() || st.closing.begin()->first > now)
    return;
  std::map<caf::actor, std::vector<series_view>> out;
  std::vector<series_view> exported;
  bool exporting = static_cast<bool>(st.cfg.exporter);
  struct mark {
    std::vector<window_ref> windows;
    std::vector<series_view> views;
  };
  std::map<uint32_t, mark> marks;
  uint64_t closed = 0;
  while (!st.closing.empty() && st.closing.begin()->first <= now) {
    auto due = std::move(st.closing.begin()->second);
    st.closing.erase(st.closing.begin());
    for (auto& o : due) {
      auto* sl = st.hosted(o.slice);
      if (sl == nullptr)
        continue;
      mark* m = nullptr;
      if (st.stream_of(o.slice) != nullptr) {
        m = &marks[o.slice];
        m->windows.push_back(window_ref{o.window_ms, o.start});
      }
      closed += st.close_windows(*sl, o.window_ms, o.start, now, [&](series_entry& e) {
        auto& state = e.state;
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
        if (m != nullptr) {
          m->views.push_back(std::move(v));
          return;
        }
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
  for (auto& [slice, m] : marks) {
    auto* stream = st.stream_of(slice);
    auto it = stream->append(item_kind::close, now);
    it.windows = std::move(m.windows);
    stream->hold_marks(it.seq, it.windows);
    send_item(self, *stream, it);
    stream->wait(it.seq, true, [self, views = std::move(m.views)](bool ok) mutable {
      if (ok)
        emit(self, std::move(views));
    });
  }
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

/// Why a replicated slice takes no writes now.
std::string why_not_writable(const primary_stream& stream) {
  auto s = "slice " + std::to_string(stream.slice());
  if (stream.fenced())
    return s + " is fenced: a replica knows epoch " + std::to_string(stream.fenced_by())
           + ", above its epoch " + std::to_string(stream.epoch()) + " here";
  if (!stream.can_reach_quorum())
    return s + " cannot reach a write quorum of " + std::to_string(stream.quorum())
           + " replicas at epoch " + std::to_string(stream.epoch());
  return s + " is bringing its followers level at epoch "
         + std::to_string(stream.epoch());
}

/// Applies the ranges of `w` this shard serves, adding their outcome to `res`;
/// buffers those of a slice being exported and forwards those of a slice moved away,
/// as parts of `reply` (made when first needed). A range of a replicated slice is
/// streamed to its followers and joins `reply` once a write quorum applied it.
void dispatch_write(shard_ptr self, const shard_write& w, shard_write_result& res,
                    std::shared_ptr<pending_write>& reply) {
  auto& st = self->state;
  auto ctx = st.context();
  // A tick may queue behind writes under load: close what is due first, so no
  // sample lands in a window that should have closed.
  close_due(self, ctx.now_ms);
  uint64_t created = 0;
  st.opened.clear();
  auto refuse = [&](const std::string& why) {
    if (res.code != errc::none)
      return;
    res.code = errc::unavailable;
    res.message = why;
  };
  auto at_epoch = [](const slice_range& r, const char* why) {
    return "slice " + std::to_string(r.slice) + why + std::to_string(r.epoch);
  };
  for (auto& r : w.ranges) {
    auto* sl = st.hosted(r.slice);
    if (sl != nullptr && sl->epoch == r.epoch) {
      if (auto* job = st.export_of(r.slice)) {
        auto n = r.end - r.begin;
        if (job->buffered_samples + n > st.cfg.handoff_buffer_limit) {
          refuse(at_epoch(r, " is being moved and holds back too many samples "
                             "at epoch "));
          continue;
        }
        job->buffered_samples += n;
        need_reply(self, reply);
        ++reply->outstanding;
        job->items.emplace_back(buffered_write{part_of(w, r, r.epoch), reply});
        continue;
      }
      auto* stream = st.stream_of(r.slice);
      if (stream != nullptr && !stream->writable()) {
        refuse(why_not_writable(*stream));
        continue;
      }
      auto before = sl->series_count();
      auto out = sl->apply(w, r, ctx, st.opened);
      created += sl->series_count() - before;
      if (out.code != errc::none) {
        if (res.code == errc::none) {
          res.code = out.code;
          res.message = std::move(out.message);
        }
        continue;
      }
      if (stream == nullptr) {
        res.applied += out.applied;
        res.late += out.late;
        if (out.duplicate)
          ++res.duplicate_ranges;
        continue;
      }
      // Replicated: a new range goes into the stream; a duplicate waits for the
      // stream's end as it is now (its first delivery is in there).
      if (!out.duplicate) {
        auto it = stream->append(item_kind::write, ctx.now_ms);
        send_item(self, *stream, it, &w, &r);
      }
      shard_write_result part;
      part.applied = out.applied;
      part.late = out.late;
      part.duplicate_ranges = out.duplicate ? 1 : 0;
      need_reply(self, reply);
      ++reply->outstanding;
      stream->wait(stream->last().seq, false,
                   [reply, part, s = r.slice](bool ok) mutable {
                     if (!ok) {
                       part = shard_write_result{};
                       part.code = errc::unavailable;
                       part.message = "slice " + std::to_string(s)
                                      + " lost its write quorum before the write "
                                        "reached it";
                     }
                     merge(reply->value, std::move(part));
                     reply->release();
                   });
      continue;
    }
    if (auto* m = st.move_of(r.slice); m != nullptr && m->forwards(r.epoch)) {
      need_reply(self, reply);
      ++reply->outstanding;
      forward_write(self, *m, part_of(w, r, m->epoch), reply);
      continue;
    }
    if (sl == nullptr && st.named_primary(r.slice) && st.table_epoch(r.slice) == r.epoch)
      refuse(at_epoch(r, " was promoted here without a replica of its state; "
                         "it takes no writes at epoch "));
    else
      refuse(at_epoch(r, " is not served here at epoch "));
  }
  st.schedule(st.opened);
  if (created > 0)
    st.cfg.counters->series += created;
  if (res.applied > 0)
    st.cfg.counters->samples_applied += res.applied;
  if (res.late > 0)
    st.cfg.counters->samples_late += res.late;
}

/// Answers a read of a key of hosted slice `sl`: at once, or for a replicated slice
/// once a write quorum holds everything the view shows.
void answer_read(shard_ptr self, const key_route& k, slice_state* sl,
                 caf::typed_response_promise<series_view> promise) {
  auto& st = self->state;
  auto view = st.view_of(k, sl);
  auto* stream = st.stream_of(k.slice);
  if (stream == nullptr) {
    promise.deliver(std::move(view));
    return;
  }
  // A primary cut off from its quorum serves nothing: the majority may have
  // moved on without it.
  if (stream->fenced() || !stream->can_reach_quorum()) {
    promise.deliver(make_error(errc::unavailable, why_not_writable(*stream)));
    return;
  }
  stream->wait(stream->last().seq, false,
               [promise, view, s = k.slice](bool ok) mutable {
                 if (ok)
                   promise.deliver(std::move(view));
                 else
                   promise.deliver(make_error(errc::unavailable,
                                              "slice " + std::to_string(s)
                                                + " cannot reach a write quorum"));
               });
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
      answer_read(self, r->key, sl, r->reply);
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

// -- roles -------------------------------------------------------------------------

/// This node leads slice `s` from the seeded follower replica it holds: no
/// acknowledged write is lost. Its followers are brought level before it takes
/// writes.
void promote(shard_ptr self, uint32_t s, const slice_assignment& a) {
  auto& st = self->state;
  auto i = st.replicas.find(s);
  auto rep = std::move(i->second);
  st.replicas.erase(i);
  rep.state->epoch = a.epoch;
  auto* sl = st.install(s, std::move(rep.state));
  st.opened.clear();
  sl->open_windows(st.opened);
  st.schedule(st.opened);
  auto* stream = configure_stream(self, s, a, a.epoch, rep.cursor.last,
                                  rep.cursor.known_commit, true);
  stream->adopt_marks(rep.cursor.unconfirmed);
  start_leveling(self, s);
}

/// This node no longer leads slice `s`: a follower keeps the state as a replica
/// (the new primary's stream checks where it stands), anyone else drops it.
void step_down(shard_ptr self, uint32_t s, const slice_assignment& a, bool follow) {
  auto& st = self->state;
  auto* stream = st.stream_of(s);
  if (stream == nullptr || !follow) {
    st.drop_slice(s);
    return;
  }
  follower_replica rep;
  rep.cursor.fence = a.epoch;
  rep.cursor.last = stream->last();
  rep.cursor.known_commit = stream->committed();
  rep.cursor.unconfirmed = stream->unconfirmed();
  rep.state = st.uninstall(s); // ends the stream: what waits for it is refused
  rep.state->epoch = a.epoch;
  st.replicas[s] = std::move(rep);
}

/// The table names this node the primary of slice `s`.
void lead(shard_ptr self, uint32_t s, const slice_assignment& a) {
  auto& st = self->state;
  auto replicated = st.replicated(a);
  if (auto* sl = st.hosted(s)) {
    sl->epoch = a.epoch;
    st.replicas.erase(s);
    if (!replicated) {
      if (auto* stream = st.stream_of(s)) {
        // One replica left: everything it holds is committed.
        stream->set_followers({}, 1);
        st.streams.erase(s);
      }
      return;
    }
    auto* stream = st.stream_of(s);
    if (stream == nullptr) {
      configure_stream(self, s, a, a.epoch, stream_position{a.epoch, 0}, 0, false);
      return;
    }
    auto unfence = stream->fenced() && a.epoch >= stream->fenced_by();
    configure_stream(self, s, a, a.epoch, {}, 0, false);
    if (unfence) {
      stream->unfence();
      start_leveling(self, s);
    }
    return;
  }
  if (auto* rep = st.replica_of(s)) {
    if (a.epoch >= rep->cursor.fence)
      promote(self, s, a);
    return;
  }
  if (!replicated || a.epoch == 1) {
    // A new cluster (or a slice without replicas): start empty.
    auto* sl = st.install(s, std::make_unique<slice_state>(s));
    sl->epoch = a.epoch;
    if (replicated)
      configure_stream(self, s, a, a.epoch, stream_position{a.epoch, 0}, 0, false);
  }
  // Otherwise promoted without a replica: refuse writes rather than start empty.
}

/// Makes slice `s` follow the latest table, unless its export is under way.
void decide(shard_ptr self, uint32_t s) {
  auto& st = self->state;
  if (s >= st.assignments.size() || st.export_of(s) != nullptr)
    return;
  auto& a = st.assignments[s];
  bool leads = st.self_member >= 0 && a.primary == st.self_member;
  bool follows = st.self_member >= 0
                 && std::find(a.followers.begin(), a.followers.end(), st.self_member)
                      != a.followers.end();
  bool settled = false; // the table predates where the primary is now
  if (auto* m = st.move_of(s)) {
    if (a.epoch <= m->epoch)
      settled = true; // the table predates the move, or confirms it
    else
      st.moved_to.erase(s);
  }
  auto* sl = st.hosted(s);
  if (sl != nullptr && a.epoch < sl->epoch)
    settled = true; // the table predates the import of the slice
  if (!settled) {
    if (leads) {
      lead(self, s, a);
      return;
    }
    if (sl != nullptr)
      step_down(self, s, a, follows);
  }
  auto* rep = st.replica_of(s);
  if (rep == nullptr)
    return;
  if (follows) {
    rep->cursor.fence = std::max(rep->cursor.fence, a.epoch);
    rep->state->epoch = rep->cursor.fence;
  } else if (!leads && a.epoch >= rep->cursor.fence) {
    st.replicas.erase(s);
  }
}

void apply_table(shard_ptr self, assignment_table&& t) {
  auto& st = self->state;
  if (t.version <= st.table_version)
    return;
  st.table_version = t.version;
  st.rf = std::max<uint32_t>(t.replication_factor, 1);
  st.self_member = -1;
  for (size_t i = 0; i < t.members.size(); ++i)
    if (t.members[i].name == st.cfg.node_name)
      st.self_member = static_cast<int32_t>(i);
  st.members = std::move(t.members);
  st.assignments = std::move(t.slices);
  for (uint32_t s = 0; s < st.assignments.size(); ++s)
    if (shard_of(s, st.cfg.shard_count) == st.cfg.index)
      decide(self, s);
  flush(self);
}

/// Ends the export of slice `s`: on success the slice is gone from here (a
/// replicated slice stays as a follower of its new primary) and requests for it go
/// to its new place; otherwise it thaws. Then the slice follows the latest table
/// and the items held back are handled in order.
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
    if (job.replicated) {
      follower_replica rep;
      rep.cursor.fence = job.new_epoch;
      rep.cursor.last = job.position;
      rep.cursor.known_commit = job.committed;
      rep.cursor.unconfirmed = std::move(job.unconfirmed);
      rep.state = st.uninstall(s);
      if (rep.state) {
        rep.state->epoch = job.new_epoch;
        st.replicas[s] = std::move(rep);
      }
    } else {
      st.drop_slice(s);
    }
  } else if (auto* sl = st.hosted(s)) {
    st.opened.clear();
    sl->open_windows(st.opened);
    st.schedule(st.opened);
  }
  decide(self, s);
  for (auto& item : job.items)
    replay(self, item);
  flush(self);
}

// -- replication: the follower's side ----------------------------------------------

/// Applies one admitted item to a follower replica; a write the replica cannot
/// apply means it diverged: it answers as if it stood elsewhere.
replica_ack apply_item(shard_ptr self, follower_replica& rep, const replica_batch& b,
                       const replica_item& it) {
  auto& st = self->state;
  auto refuse = [&] {
    return replica_ack{it.slice, ack_code::gap, rep.cursor.last.epoch,
                       rep.cursor.last.seq, it.seq};
  };
  switch (it.kind) {
    case item_kind::write: {
      if (it.range >= b.write.ranges.size())
        return refuse();
      auto& r = b.write.ranges[it.range];
      if (r.slice != it.slice || r.begin > r.end || r.end > b.write.samples.size())
        return refuse();
      apply_context ctx;
      ctx.now_ms = it.now_ms;
      ctx.lateness_ms = st.cfg.lateness_ms;
      ctx.accuracy = st.cfg.accuracy;
      ctx.staleness_ms = st.cfg.staleness_ms;
      st.ignored.clear();
      auto out = rep.state->apply(b.write, r, ctx, st.ignored);
      if (out.code != errc::none || out.duplicate)
        return refuse();
      break;
    }
    case item_kind::close:
      for (auto& w : it.windows)
        st.close_windows(*rep.state, w.window_ms, w.start, it.now_ms,
                         [](series_entry&) {});
      break;
    case item_kind::barrier:
      break;
  }
  rep.cursor.advance(it);
  rep.state->epoch = rep.cursor.fence;
  return rep.cursor.ack(it.slice);
}

/// A follower's answer to one item of a slice it does not follow here.
replica_ack refuse_unfollowed(shard_ptr self, const replica_item& it) {
  auto& st = self->state;
  auto s = it.slice;
  if (auto* sl = st.hosted(s)) {
    if (sl->epoch >= it.epoch)
      return replica_ack{s, ack_code::stale, sl->epoch, 0, it.seq};
    // A primary at a higher epoch exists: this one acknowledges nothing more and
    // asks for a seed (which makes it a follower).
    if (auto* stream = st.stream_of(s))
      stream->fence(it.epoch);
  } else if (auto* m = st.move_of(s); m != nullptr && m->epoch > it.epoch) {
    return replica_ack{s, ack_code::stale, m->epoch, 0, it.seq};
  } else if (st.table_epoch(s) > it.epoch) {
    return replica_ack{s, ack_code::stale, st.table_epoch(s), 0, it.seq};
  }
  return replica_ack{s, ack_code::unseeded, 0, 0, it.seq};
}

std::vector<replica_ack> on_replicate(shard_ptr self, const replica_batch& b) {
  auto& st = self->state;
  std::vector<replica_ack> out;
  for (auto& it : b.items) {
    auto i = std::find_if(out.begin(), out.end(), [&](const replica_ack& a) {
      return a.slice == it.slice;
    });
    if (i == out.end()) {
      out.push_back(replica_ack{it.slice, ack_code::ok, 0, 0, 0});
      i = std::prev(out.end());
    } else if (i->code != ack_code::ok) {
      continue; // the slice's earlier item was refused: so are the later ones
    }
    auto* rep = st.replica_of(it.slice);
    if (rep == nullptr || st.hosted(it.slice) != nullptr
        || st.export_of(it.slice) != nullptr) {
      *i = refuse_unfollowed(self, it);
      continue;
    }
    auto code = rep->cursor.admit(it, st.table_epoch(it.slice));
    if (code != ack_code::ok) {
      auto fence = std::max(rep->cursor.fence, st.table_epoch(it.slice));
      *i = replica_ack{it.slice, code,
                       code == ack_code::stale ? fence : rep->cursor.last.epoch,
                       rep->cursor.last.seq, it.seq};
      continue;
    }
    *i = apply_item(self, *rep, b, it);
  }
  for (auto& c : b.commits)
    if (auto* rep = st.replica_of(c.slice); rep != nullptr && c.epoch >= rep->cursor.fence)
      rep->cursor.commit(c.seq);
  return out;
}

replica_ack on_seed(shard_ptr self, slice_snapshot& snap) {
  auto& st = self->state;
  auto s = snap.slice;
  auto refuse = [&](ack_code code, uint64_t epoch) {
    return replica_ack{s, code, epoch, 0, 0};
  };
  if (shard_of(s, st.cfg.shard_count) != st.cfg.index || st.export_of(s) != nullptr)
    return refuse(ack_code::unseeded, 0);
  if (auto* sl = st.hosted(s)) {
    if (sl->epoch >= snap.epoch)
      return refuse(ack_code::stale, sl->epoch);
    // A primary at a higher epoch seeds this one: it follows from now on.
    st.drop_slice(s);
  }
  if (auto* m = st.move_of(s); m != nullptr && m->epoch > snap.epoch)
    return refuse(ack_code::stale, m->epoch);
  auto table = st.table_epoch(s);
  if (auto* rep = st.replica_of(s)) {
    auto code = rep->cursor.admit_seed(snap.epoch, snap.position, table);
    if (code != ack_code::ok)
      return replica_ack{s, code, std::max(rep->cursor.fence, table),
                         rep->cursor.last.seq, 0};
  } else if (snap.epoch < table) {
    return refuse(ack_code::stale, table);
  }
  snap.subscribers.clear(); // followers emit nothing
  std::string why;
  auto sl = slice_state::restore(snap, why);
  if (!sl)
    return refuse(ack_code::unseeded, 0);
  auto& rep = st.replicas[s];
  rep.state = std::move(sl);
  rep.cursor.reset(snap);
  rep.state->epoch = rep.cursor.fence;
  return rep.cursor.ack(s);
}

/// The shards of every connected node: followers get their (new) shards.
void on_node_shards(shard_ptr self, std::vector<node_shards>& nodes) {
  auto& st = self->state;
  st.peers.clear();
  for (auto& n : nodes) {
    if (n.name == st.cfg.node_name)
      continue;
    auto& v = st.peers[n.name];
    for (auto& h : n.shards)
      v.push_back(caf::actor_cast<caf::actor>(h));
  }
  for (auto& [s, stream] : st.streams)
    relink(self, s, *stream, false);
  flush(self);
}

/// A follower shard is gone: nothing more is streamed to it.
void on_follower_down(shard_ptr self, const caf::actor_addr& who) {
  auto& st = self->state;
  for (auto& [name, v] : st.peers)
    for (auto& h : v)
      if (h && h.address() == who)
        h = nullptr;
  for (auto& [s, stream] : st.streams)
    for (auto& f : stream->followers())
      if (f.shard && f.shard.address() == who) {
        f.shard = nullptr;
        f.acked = 0;
        stream->lost(f);
      }
}

/// Tells followers the latest commit points and retries failed seeds.
void replication_tick(shard_ptr self, int64_t now) {
  auto& st = self->state;
  for (auto& [s, stream] : st.streams) {
    bool news = stream->take_commit_news();
    for (auto& f : stream->followers()) {
      if (!f.shard)
        continue;
      if (f.state == link_state::idle) {
        if (f.retry_at <= now && st.hosted(s) != nullptr)
          seed(self, s, *stream, f);
        continue;
      }
      if (news)
        outbox_of(self, f.shard, s);
    }
  }
  flush(self);
}

shard_handoff_actor::behavior_type shard_behavior(shard_ptr self, shard_config cfg) {
  self->state.cfg = std::move(cfg);
  apply_table(self, std::move(self->state.cfg.initial));
  self->state.cfg.initial = assignment_table{};
  self->request(self->state.cfg.directory, self->state.timeout(), subscribe_atom::value,
                caf::actor_cast<caf::actor>(self))
    .then([self](assignment_table& t) { apply_table(self, std::move(t)); },
          [self](caf::error& err) {
            // Without a table the shard hosts nothing; writes get UNAVAILABLE.
            self->quit(err);
          });
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    if (st.watched.erase(msg.source) > 0) {
      on_follower_down(self, msg.source);
      flush(self);
    }
    st.drop_subscriber(msg.source);
  });
  schedule_tick(self);
  return {
    [self](write_atom, shard_write& w) -> caf::result<shard_write_result> {
      shard_write_result res;
      std::shared_ptr<pending_write> reply;
      dispatch_write(self, w, res, reply);
      flush(self);
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
      if (st.stream_of(k.slice) == nullptr)
        return st.view_of(k, sl);
      auto promise = self->make_response_promise<series_view>();
      answer_read(self, k, sl, promise);
      return promise;
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
    [self](update_atom, assignment_table& t) { apply_table(self, std::move(t)); },
    [self](tick_atom) {
      auto& st = self->state;
      auto now = st.now();
      close_due(self, now);
      if (st.inputs && now >= st.next_expiry) {
        auto staleness = static_cast<int64_t>(st.cfg.staleness_ms);
        st.inputs->expire(now - staleness);
        st.next_expiry = now + std::max<int64_t>(staleness / 4, 1000);
      }
      if (!st.streams.empty())
        replication_tick(self, now);
      flush(self);
      schedule_tick(self);
    },
    [self](position_atom, std::vector<uint32_t>& xs) {
      std::vector<replica_position> out;
      out.reserve(xs.size());
      for (auto s : xs)
        out.push_back(self->state.position_of(s));
      return out;
    },
    [self](read_atom, local_atom,
           key_route& k) -> caf::result<series_view, replica_position> {
      auto& st = self->state;
      slice_state* sl = st.hosted(k.slice);
      if (sl == nullptr)
        if (auto* rep = st.replica_of(k.slice))
          sl = rep->state.get();
      return {st.view_of(k, sl), st.position_of(k.slice)};
    },
    [self](replicate_atom, replica_batch& b) { return on_replicate(self, b); },
    [self](seed_atom, slice_snapshot& snap) { return on_seed(self, snap); },
    [self](node_shards_atom, std::vector<node_shards>& nodes) {
      on_node_shards(self, nodes);
    },
    [self](level_atom, uint32_t s) {
      auto* stream = self->state.stream_of(s);
      if (stream != nullptr && stream->awaiting_barrier()) {
        start_leveling(self, s);
        flush(self);
      }
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
      st.replicas.erase(s); // the follower replica this snapshot supersedes
      auto n = sl->series_count();
      st.opened.clear();
      sl->open_windows(st.opened);
      st.install(s, std::move(sl));
      st.schedule(st.opened);
      for (auto& sub : subscriptions)
        for (auto& sink : sub.sinks)
          if (sink)
            add_subscriber(self, sub.key, s, sink);
      if (s < st.assignments.size() && st.replicated(st.assignments[s])) {
        // Led from here before any table says so: stream to the slice's other
        // replicas (its old primary stays as a follower). The first item goes out
        // after this reply, so that it reaches the old primary after the reply.
        auto* stream = configure_stream(self, s, st.assignments[s], snap.epoch,
                                        snap.position, snap.committed, true);
        stream->adopt_marks(snap.unconfirmed);
        stream->hold_writes();
        self->send(self, level_atom::value, s);
      }
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
      flush(self);
      st.unschedule(s);
      auto snap = sl->snapshot(new_epoch);
      snap.subscribers = st.subscriptions_of(s);
      export_job job;
      job.from_epoch = sl->epoch;
      job.new_epoch = new_epoch;
      job.dest = dest;
      if (auto* stream = st.stream_of(s)) {
        snap.position = stream->last();
        snap.committed = stream->committed();
        snap.unconfirmed = stream->unconfirmed();
        job.replicated = true;
        job.position = snap.position;
        job.committed = snap.committed;
        job.unconfirmed = snap.unconfirmed;
      }
      st.exporting.emplace(s, std::move(job));
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
