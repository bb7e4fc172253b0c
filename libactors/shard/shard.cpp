#include "shard/shard.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <variant>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "events/event_log.hpp"
#include "shard/shard_state.hpp"
#include "tether/tether.hpp"
#include "wire/codec.hpp"

namespace tether::series {

namespace internal {

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
  out.samples.reserve(r.end - r.begin);
  append_range(out, w, r);
  out.ranges.front().epoch = epoch;
  return out;
}

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

/// Closes every window due at `now`, oldest first, and sends each subscriber one
/// message with the windows of its keys that closed (`emit`). Windows of a replicated slice
/// are closed through a close mark in its stream and emitted once a write quorum
/// applied the mark.
void close_due(shard_ptr self, int64_t now) {
  auto& st = self->state;
  if (st.closing.empty() || st.closing.begin()->first > now)
    return;
  std::vector<series_view> direct; // of slices without a stream: emitted now
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
        // A view only for who receives it (`emit` sends it to them).
        if (!exporting
            && (st.subscribers.empty()
                || st.subscribers.count(std::string{e.key()}) == 0))
          return;
        series_view v;
        v.key = e.key();
        v.node = st.cfg.node_name;
        v.slice = o.slice;
        v.epoch = sl->epoch;
        e.state.fill(v);
        (m != nullptr ? m->views : direct).push_back(std::move(v));
      });
    }
  }
  st.cfg.counters->windows_closed += closed;
  emit(self, std::move(direct));
  for (auto& [slice, m] : marks) {
    auto* stream = st.stream_of(slice);
    auto it = stream->append(item_kind::close, now);
    it.windows = std::move(m.windows);
    stream->hold_marks(it.seq, it.windows);
    send_item(self, *stream, it);
    stream->wait(it.seq, true,
                 [self, slice = slice, views = std::move(m.views)](bool ok) mutable {
                   if (!ok)
                     return;
                   // Tell the followers at once that the mark is committed: a
                   // follower promoted before it learns this emits the windows
                   // again (subscribers drop repeats by window end).
                   announce_commit(self, slice);
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
  self->request(self->state.dest_of(m), self->state.timeout(), write_atom::value,
                std::move(part))
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
  // Whether a follower on the requester's node may answer it (replication's
  // `near_ack`): every range a new item of a stream whose write quorum is two.
  bool near = w.near_token != 0;
  // Taken now: a response promise made below takes the sender from the message.
  auto requester = near ? self->current_sender() : caf::strong_actor_ptr{};
  uint32_t near_items = 0;
  shard_write_result near_result;
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
        if (job->unknown) {
          refuse(at_epoch(r, " is being moved, with the outcome not known yet, at "
                             "epoch "));
          continue;
        }
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
      auto made = sl->series_count() - before;
      created += made;
      if (ctx.series_room != std::numeric_limits<uint64_t>::max())
        ctx.series_room -= std::min<uint64_t>(ctx.series_room, made);
      st.cfg.counters->count_slice(r.slice, out.applied, sl->series_count());
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
      // stream's end as it is now (its first delivery is in there). The node's
      // counters count what the primary applied, as for an unreplicated slice.
      if (out.applied > 0)
        st.cfg.counters->samples_applied += out.applied;
      if (out.late > 0)
        st.cfg.counters->samples_late += out.late;
      if (!out.duplicate) {
        auto it = stream->append(item_kind::write, ctx.now_ms);
        send_item(self, *stream, it, &w, &r);
        ++near_items;
      }
      near = near && stream->quorum() == 2;
      near_result.applied += out.applied;
      near_result.late += out.late;
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
  if (near && res.code == errc::none && near_items == w.ranges.size())
    attach_near(self, requester, w, std::move(near_result), near_items, reply);
  seal_writes(self);
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
/// Calls `done(true)` once a write quorum of `stream`'s replicas confirmed, after
/// this call, that this shard still leads the slice and holds everything it applied
/// so far; `done(false)` if not. A barrier item goes to the followers: one that
/// follows a newer primary refuses it (the election fenced it), which fences this
/// stream. Reads that arrive before the next flush share one barrier.
void confirm_leading(shard_ptr self, primary_stream& stream,
                     std::function<void(bool)> done) {
  auto& st = self->state;
  // A new primary that has not levelled its followers yet cannot vouch for anything.
  if (stream.fenced() || !stream.can_reach_quorum() || stream.awaiting_barrier()) {
    done(false);
    return;
  }
  auto s = stream.slice();
  auto known = st.read_barriers.find(s);
  if (known == st.read_barriers.end() || known->second != stream.last().seq) {
    auto it = stream.append(item_kind::barrier, st.now());
    send_item(self, stream, it);
    st.read_barriers[s] = it.seq;
    flush_soon(self);
  }
  stream.wait(stream.last().seq, false, std::move(done));
}

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
  confirm_leading(self, *stream,
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
  std::vector<key_route> replicated;
  // Views of replicated slices, by slice: they go out once a quorum confirmed that
  // this shard still leads the slice (and holds everything in them).
  std::map<uint32_t, std::vector<series_view>> to_confirm;
  for (auto& k : keys) {
    if (st.export_of(k.slice) != nullptr || st.move_of(k.slice) != nullptr) {
      elsewhere[k.slice].push_back(k);
      continue;
    }
    add_subscriber(self, k.key, k.slice, sink);
    auto* stream = st.stream_of(k.slice);
    if (stream != nullptr)
      replicated.push_back(k);
    auto* sl = st.hosted(k.slice);
    if (sl == nullptr || sl->find(k.key) == nullptr)
      continue;
    if (stream != nullptr)
      to_confirm[k.slice].push_back(st.view_of(k, sl));
    else
      views.push_back(st.view_of(k, sl));
  }
  if (!replicated.empty())
    share_subscriptions(self, replicated, sink);
  for (auto& [slice, vs] : to_confirm) {
    auto* stream = st.stream_of(slice);
    need_reply(self, reply);
    ++reply->outstanding;
    confirm_leading(self, *stream,
                 [reply, vs = std::move(vs), slice = slice](bool ok) mutable {
                   if (ok)
                     merge(reply->value, std::move(vs));
                   else if (!reply->error)
                     reply->error = make_error(errc::unavailable,
                                               "slice " + std::to_string(slice)
                                                 + " cannot reach a write quorum");
                   reply->release();
                 });
  }
  for (auto& [slice, part] : elsewhere) {
    need_reply(self, reply);
    ++reply->outstanding;
    if (auto* job = st.export_of(slice)) {
      job->items.emplace_back(buffered_subscribe{std::move(part), sink, reply});
      continue;
    }
    self->request(st.dest_of(*st.move_of(slice)), st.timeout(), subscribe_atom::value,
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
      r->reply.delegate(st.dest_of(*m), read_atom::value, std::move(r->key));
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

/// Makes slice `s` follow the latest table, unless its export is under way. An
/// export without a known outcome ends once a table at its new epoch or later
/// settled the slice.
void decide(shard_ptr self, uint32_t s) {
  auto& st = self->state;
  if (s >= st.assignments.size())
    return;
  if (auto* job = st.export_of(s)) {
    if (job->unknown && st.assignments[s].epoch >= job->new_epoch)
      finish_export(self, s, false); // decides again
    return;
  }
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
    remove_subscriptions(self, s);
  }
}

/// Logs the role changes since the last report, one line per kind.
void report_roles(shard_ptr self) {
  auto& st = self->state;
  if (st.roles.empty())
    return;
  auto roles = std::move(st.roles);
  st.roles = {};
  if (!st.cfg.events)
    return;
  auto at = " at table version " + std::to_string(st.table_version);
  auto who = "shard " + std::to_string(st.cfg.index) + ": ";
  auto& log = *st.cfg.events;
  if (!roles.promoted.empty())
    log.record("promote", who + events::slice_list(roles.promoted)
                            + " promoted from follower replicas" + at);
  if (!roles.without_replica.empty())
    log.record("refuse", who + events::slice_list(roles.without_replica)
                           + " assigned here without a replica refuse writes" + at
                           + " (their state is on no reachable replica)");
  if (!roles.stepped_down.empty())
    log.record("step-down",
               who + events::slice_list(roles.stepped_down) + " now follow a new primary" + at);
  if (!roles.started_empty.empty())
    log.record("start-empty", who + events::slice_list(roles.started_empty)
                                + " start empty here: the election found no replica with"
                                + " state" + at);
  if (!roles.seeded.empty())
    log.record("seed", who + "sent the state of " + events::slice_list(roles.seeded)
                         + " to follower replicas");
  if (!roles.imported.empty())
    log.record("import", who + events::slice_list(roles.imported)
                           + " were handed over to this node and are led here now");
  if (!roles.withdrawn.empty())
    log.record("withdraw",
               who + "the imports of " + events::slice_list(roles.withdrawn)
                 + " were withdrawn: their source did not get the answer in time");
}

void apply_table(shard_ptr self, assignment_table&& t) {
  auto& st = self->state;
  if (t.version <= st.table_version)
    return;
  st.table_version = t.version;
  st.rf = std::max<uint32_t>(t.replication_factor, 1);
  st.self_member = -1;
  for (size_t i = 0; i < t.members.size(); ++i) {
    auto& m = t.members[i];
    if (m.name == st.cfg.node_name
        && (st.cfg.incarnation == 0 || m.incarnation == 0
            || m.incarnation == st.cfg.incarnation))
      st.self_member = static_cast<int32_t>(i);
  }
  st.members = std::move(t.members);
  st.assignments = std::move(t.slices);
  // An election's fence is kept only until a table reaches its epoch or version.
  for (auto i = st.election_fences.begin(); i != st.election_fences.end();)
    if (st.table_epoch(i->first) >= i->second.epoch || t.version >= i->second.version)
      i = st.election_fences.erase(i);
    else
      ++i;
  for (uint32_t s = 0; s < st.assignments.size(); ++s)
    if (shard_of(s, st.cfg.shard_count) == st.cfg.index)
      decide(self, s);
  flush(self);
  report_roles(self);
}


/// Every series with a closed window that ended within the staleness period (older
/// ones have lost their inputs), and the slices' sizes, for /metrics.
shard_scrape scrape_of(shard_ptr self) {
  shard_scrape scrape;
  auto& out = scrape.series;
  auto stale_before = self->state.now()
                      - static_cast<int64_t>(self->state.cfg.staleness_ms);
  for (auto& entry : self->state.slices) {
    // Not a structured binding: C++17 lambdas cannot capture those (clang).
    auto id = entry.first;
    auto& sl = entry.second;
    scrape.slices.push_back(slice_stat{id, sl->epoch, sl->series_count()});
    sl->for_each([&](const series_entry& e) {
      if (e.state.last_closed.count == 0 || e.state.closed_until < stale_before)
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
}

/// The shard's tick: closes due windows, logs role changes, expires idle inputs,
/// runs the replication streams' timers and sends what queued up.
void on_tick(shard_ptr self) {
  auto& st = self->state;
  auto now = st.now();
  close_due(self, now);
  report_roles(self); // seeds sent since the last table
  if (st.inputs && now >= st.next_expiry) {
    auto staleness = static_cast<int64_t>(st.cfg.staleness_ms);
    st.inputs->expire(now - staleness);
    st.next_expiry = now + std::max<int64_t>(staleness / 4, 1000);
  }
  if (!st.streams.empty())
    replication_tick(self, now);
  watch_unserved(self, now);
  flush(self);
  schedule_tick(self);
}

/// An election asks for the table `version` it will propose: until a table reaches
/// that version, refuse the items and seeds of every primary below the epoch it will
/// commit, then say where the replica stands. A shard that still leads the slice (it
/// has not received the table that demoted it yet, or the election settles an
/// unsettled handoff and asks the primary too) fences its stream as well: it stops
/// acknowledging, so that its answer cannot complete an old quorum later. A shard
/// that already has a table of that version sets no fence: the election lost the
/// version to another table and will not commit.
std::vector<replica_position> fence_for_election(shard_ptr self,
                                                 const std::vector<uint32_t>& xs,
                                                 const std::vector<uint64_t>& fences,
                                                 uint64_t version) {
  auto& st = self->state;
  std::vector<replica_position> out;
  out.reserve(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) {
    auto s = xs[i];
    auto e = i < fences.size() ? fences[i] : 0;
    if (s >= max_slice_count)
      e = 0; // no such slice in any table: nothing to fence, it answers empty
    if (e > st.fence_epoch(s) && version > st.table_version) {
      st.election_fences[s] = shard_state::election_fence{e, version};
      if (auto* stream = st.stream_of(s); stream != nullptr && e > stream->epoch())
        stream->fence(e);
    }
    out.push_back(st.position_of(s));
  }
  return out;
}

} // namespace internal

namespace {

using namespace internal;

shard_handoff_actor::behavior_type shard_behavior(shard_ptr self, shard_config cfg) {
  self->state.cfg = std::move(cfg);
  self->state.batch_deadlines.set_timeout(self->state.timeout());
  apply_table(self, std::move(self->state.cfg.initial));
  self->state.cfg.initial = assignment_table{};
  self->request(self->state.cfg.directory, self->state.timeout(), subscribe_atom::value,
                caf::actor_cast<caf::actor>(self))
    .then([self](assignment_table& t) { apply_table(self, std::move(t)); },
          [self](caf::error& err) {
            // Without a table the shard hosts nothing; writes get UNAVAILABLE.
            self->quit(err);
          });
  // An error that arrives as a message (another node's actor answering an
  // asynchronous send with one, say) must not stop this actor: CAF's default
  // handler would quit it.
  self->set_error_handler([](caf::error&) {});
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
      flush_soon(self);
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
        if (job->unknown)
          return make_error(errc::unavailable,
                            "slice " + std::to_string(k.slice)
                              + " is being moved, with the outcome not known yet");
        auto promise = self->make_response_promise<series_view>();
        job->items.emplace_back(buffered_read{std::move(k), promise});
        return promise;
      }
      if (auto* m = st.move_of(k.slice))
        return self->delegate(st.dest_of(*m), read_atom::value, std::move(k));
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
    [self](read_atom) { return scrape_of(self); },
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
    [self](tick_atom) { on_tick(self); },
    [self](position_atom, std::vector<uint32_t>& xs) {
      std::vector<replica_position> out;
      out.reserve(xs.size());
      for (auto s : xs)
        out.push_back(self->state.position_of(s));
      return out;
    },
    [self](position_atom, std::vector<uint32_t>& xs, std::vector<uint64_t>& fences,
           uint64_t version) {
      return fence_for_election(self, xs, fences, version);
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
    [self](requests::sweep_atom) {
      auto& d = self->state.batch_deadlines;
      if (d.sweep(self))
        self->delayed_send(self, d.interval(), requests::sweep_atom::value);
    },
    [self](replica_flush_atom) {
      self->state.flush_scheduled = false;
      flush(self);
    },
    [self](seed_atom, slice_snapshot& snap) { return on_seed(self, snap); },
    [self](subscribe_atom, local_atom, std::vector<key_route>& keys, caf::actor& sink) {
      // A primary shares its subscribers with its followers: a promoted follower
      // emits to them.
      auto& st = self->state;
      for (auto& k : keys)
        if (shard_of(k.slice, st.cfg.shard_count) == st.cfg.index && sink)
          add_subscriber(self, k.key, k.slice, sink);
    },
    [self](node_shards_atom, std::vector<node_shards>& nodes) {
      on_node_shards(self, nodes);
    },
    [self](level_atom, uint32_t s) {
      auto* stream = self->state.stream_of(s);
      if (stream != nullptr && stream->awaiting_barrier()) {
        start_leveling(self, s, true);
        flush(self);
      }
    },
    [self](import_atom, slice_snapshot& snap) -> caf::result<uint64_t> {
      return on_import(self, snap);
    },
    [self](abort_atom, uint32_t s, uint64_t epoch) { on_abort(self, s, epoch); },
    [self](export_atom, uint32_t s, uint64_t new_epoch,
           shard_import_actor& dest) -> caf::result<uint64_t> {
      return on_export(self, s, new_epoch, dest);
    },
  };
}

} // namespace

shard_handoff_actor spawn_shard(caf::actor_system& sys, shard_config cfg) {
  return sys.spawn(shard_behavior, std::move(cfg));
}

} // namespace tether::series
