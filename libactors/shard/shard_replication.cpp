#include "shard/shard_state.hpp"

#include <algorithm>

#include <caf/send.hpp>

#include "tether/tether.hpp"

// The replication stream of the slices a shard hosts: the primary's side (items,
// batches, seeds, commit point, promotion and leveling) and the follower's side
// (applying items and seeds). The rules are replication/'s; this file carries them
// out with actor messages.

namespace tether::series::internal {

// -- the primary's side ------------------------------------------------------------

void send_batch(shard_ptr self, const caf::actor& shard, outbound&& ob);

namespace {

void seal(outbound& ob) {
  if (ob.open == nullptr)
    return;
  auto& w = *ob.open;
  auto& ws = ob.batch.writes;
  auto index = static_cast<uint32_t>(ws.size());
  if (ob.open_samples * 2 >= w.samples.size()) {
    ws.push_back(w); // items keep the write's own range numbers
    for (auto& [item, range] : ob.open_items) {
      ob.batch.items[item].write = index;
      ob.batch.items[item].range = range;
    }
  } else {
    auto& part = ws.emplace_back();
    part.producer = w.producer;
    part.sequence = w.sequence;
    part.samples.reserve(ob.open_samples);
    for (auto& [item, range] : ob.open_items) {
      ob.batch.items[item].write = index;
      ob.batch.items[item].range = append_range(part, w, w.ranges[range]);
    }
  }
  ob.open = nullptr;
  ob.open_items.clear();
  ob.open_samples = 0;
}

} // namespace

void seal_writes(shard_ptr self) {
  for (auto& [shard, ob] : self->state.outbox)
    seal(ob);
}

void attach_near(shard_ptr self, const caf::strong_actor_ptr& requester,
                 const shard_write& w, shard_write_result result, size_t items,
                 std::shared_ptr<pending_write> reply) {
  if (!requester || items == 0 || !reply)
    return;
  auto node = requester->node();
  for (auto& [shard, ob] : self->state.outbox) {
    if (shard.node() != node || ob.open != &w || ob.open_items.size() != items)
      continue;
    near_ack n;
    n.to = caf::actor_cast<caf::actor>(requester);
    n.token = w.near_token;
    n.result = std::move(result);
    n.items.reserve(items);
    outbound::near_reply wait{std::move(reply), {}};
    for (auto& [item, range] : ob.open_items) {
      n.items.push_back(item);
      wait.slices.push_back(ob.batch.items[item].slice);
    }
    ob.batch.nears.push_back(std::move(n));
    ob.near_replies.push_back(std::move(wait));
    return;
  }
}

/// Marks the replies whose near answer the follower sent: it acknowledged every
/// slice of the write's items in its answer to the batch that carried them (the
/// follower answers a write exactly when it applied all of them; an ok ack of a
/// slice means every item of the slice in the batch was applied).
void mark_near_answers(const std::vector<outbound::near_reply>& nears,
                       const replica_acks& reply) {
  if (nears.empty())
    return;
  std::vector<uint32_t> ok; // the slices acknowledged, sorted
  ok.reserve(reply.xs.size());
  for (auto& a : reply.xs)
    if (a.code == ack_code::ok)
      ok.push_back(a.slice);
  std::sort(ok.begin(), ok.end());
  for (auto& n : nears) {
    auto all = std::all_of(n.slices.begin(), n.slices.end(), [&](uint32_t s) {
      return std::binary_search(ok.begin(), ok.end(), s);
    });
    if (all)
      n.reply->answered = true;
  }
}

/// Sends every follower shard what queued up for it, one message each.
void flush(shard_ptr self) {
  auto& st = self->state;
  if (st.outbox.empty())
    return;
  seal_writes(self);
  st.read_barriers.clear();
  auto box = std::move(st.outbox);
  st.outbox.clear();
  for (auto& [shard, ob] : box)
    send_batch(self, shard, std::move(ob));
}

void flush_soon(shard_ptr self) {
  auto& st = self->state;
  if (st.outbox.empty() || st.flush_scheduled)
    return;
  st.flush_scheduled = true;
  self->send(caf::actor_cast<shard_replica_actor>(self), replica_flush_atom::value);
}

outbound& outbox_of(shard_ptr self, const caf::actor& shard, uint32_t slice) {
  auto& ob = self->state.outbox[shard];
  ob.list(slice);
  return ob;
}

/// Queues `it` (and, for a write item, the samples of `r` of `w`) for every follower
/// of `stream` that is streamed to; `flush` sends the queue.
void send_item(shard_ptr self, primary_stream& stream, const replica_item& it,
               const shard_write* w, const slice_range* r) {
  for (auto& f : stream.followers()) {
    if (!f.shard || f.state == link_state::idle)
      continue;
    auto& ob = outbox_of(self, f.shard, stream.slice());
    if (w != nullptr) {
      if (ob.open != w)
        seal(ob);
      ob.open = w;
      ob.open_items.emplace_back(static_cast<uint32_t>(ob.batch.items.size()),
                                 static_cast<uint32_t>(r - w->ranges.data()));
      ob.open_samples += r->end - r->begin;
    }
    ob.batch.items.push_back(it);
  }
}

void seed(shard_ptr self, uint32_t s, primary_stream& stream,
          primary_stream::follower& f);

/// The generation of the link to `shard` of slice `s`'s stream (0: none).
uint64_t generation_of(shard_ptr self, uint32_t s, const caf::actor& shard) {
  if (auto* stream = self->state.stream_of(s))
    for (auto& f : stream->followers())
      if (f.shard == shard)
        return f.generation;
  return 0;
}

/// Handles a follower's answer about slice `a.slice` to a batch sent over the
/// link's generation `gen`: an ack counts whenever it comes (it is a fact about the
/// follower), a refusal only if the link has not been started again since.
void on_ack(shard_ptr self, const caf::actor& shard, const replica_ack& a,
            uint64_t gen) {
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
  if (a.code != ack_code::ok && f->generation != gen)
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

/// A follower did not answer (in time) a batch sent over the link's generation
/// `gen`, or its shard is gone.
void on_silence(shard_ptr self, const caf::actor& shard, uint32_t s, uint64_t gen) {
  auto& st = self->state;
  auto* stream = st.stream_of(s);
  if (stream == nullptr)
    return;
  for (auto& f : stream->followers())
    if (f.shard == shard && f.generation == gen && f.state != link_state::idle)
      stream->retry_later(f, st.now());
}

void send_batch(shard_ptr self, const caf::actor& shard, outbound&& ob) {
  auto& st = self->state;
  for (auto s : ob.slices)
    if (auto* stream = st.stream_of(s))
      ob.batch.commits.push_back(commit_note{s, stream->epoch(), stream->committed()});
  // Each slice's link generation as the batch leaves, sorted by slice.
  std::vector<std::pair<uint32_t, uint64_t>> gens;
  gens.reserve(ob.slices.size());
  for (auto s : ob.slices)
    gens.emplace_back(s, generation_of(self, s, shard));
  std::sort(gens.begin(), gens.end());
  auto gen_of = [](const std::vector<std::pair<uint32_t, uint64_t>>& xs, uint32_t s) {
    auto i = std::lower_bound(xs.begin(), xs.end(), std::make_pair(s, uint64_t{0}));
    return i != xs.end() && i->first == s ? i->second : uint64_t{0};
  };
  // No CAF timeout: the shard keeps the batch's deadline (one sweep timer, not two
  // clock wake-ups per batch); past it, the error handler runs as after a timeout.
  auto h = self->request(caf::actor_cast<shard_replica_actor>(shard), caf::infinite,
                         replicate_atom::value, std::move(ob.batch));
  auto id = h.id();
  if (st.batch_deadlines.add(id))
    self->delayed_send(self, st.batch_deadlines.interval(), requests::sweep_atom::value);
  h.then(
    [self, shard, gens, gen_of, id,
     nears = std::move(ob.near_replies)](replica_acks& reply) {
      self->state.batch_deadlines.done(id);
      // First, before the acks move commit points: which near answers went out.
      mark_near_answers(nears, reply);
      for (auto& a : reply.xs)
        on_ack(self, shard, a, gen_of(gens, a.slice));
      flush_soon(self);
    },
    [self, shard, gens, id](caf::error&) {
      self->state.batch_deadlines.done(id);
      for (auto& [s, gen] : gens)
        on_silence(self, shard, s, gen);
      flush_soon(self);
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
  // What queued up before the seed leaves before it, as it would have without
  // group commit.
  flush(self);
  auto snap = sl->snapshot(stream.epoch());
  snap.subscribers = st.subscriptions_of(s);
  snap.position = stream.last();
  snap.committed = stream.committed();
  snap.unconfirmed = stream.unconfirmed();
  f.state = link_state::seeding;
  f.seeded_through = stream.last().seq;
  f.generation = ++st.link_generation;
  st.roles.seeded.push_back(s);
  auto shard = f.shard;
  auto gen = f.generation;
  // Finds the follower again if nothing replaced this seed meanwhile.
  auto current = [self, s, shard, gen]() -> primary_stream::follower* {
    auto* stream = self->state.stream_of(s);
    if (stream == nullptr)
      return nullptr;
    for (auto& x : stream->followers())
      if (x.shard == shard && x.state == link_state::seeding && x.generation == gen)
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
            f->failures = 0;
            stream->acked(*f, a.seq);
            break;
          case ack_code::stale:
            // Fenced by a higher epoch, the stream seeds nobody until a table
            // lets it lead again (lead_again).
            if (a.epoch > stream->epoch())
              stream->fence(a.epoch);
            stream->retry_later(*f, self->state.now());
            break;
          case ack_code::ahead:
            stream->fence(stream->epoch() + 1);
            stream->lost(*f);
            break;
          default:
            stream->retry_later(*f, self->state.now());
        }
        flush(self);
      },
      [self, s, current](caf::error&) {
        auto* f = current();
        if (f == nullptr)
          return;
        self->state.stream_of(s)->retry_later(*f, self->state.now());
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
    f.failures = 0;
    f.state = link_state::idle;
    f.generation = ++st.link_generation;
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
/// accept it, the others are seeded; writes wait until a quorum has it. With
/// `adopted`, the stream's unconfirmed close marks are a previous primary's: their
/// windows are emitted once the barrier is committed (a primary's own marks have
/// their emissions waiting already).
void start_leveling(shard_ptr self, uint32_t s, bool adopted) {
  auto& st = self->state;
  auto* stream = st.stream_of(s);
  auto* sl = st.hosted(s);
  if (stream == nullptr || sl == nullptr)
    return;
  auto it = stream->append_barrier(st.now());
  send_item(self, *stream, it);
  auto& marks = stream->unconfirmed();
  if (!adopted || marks.empty())
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

void share_subscriptions(shard_ptr self, const std::vector<key_route>& keys,
                         const caf::actor& sink) {
  auto& st = self->state;
  std::map<caf::actor, std::vector<key_route>> by_shard;
  for (auto& k : keys)
    if (auto* stream = st.stream_of(k.slice))
      for (auto& f : stream->followers())
        if (f.shard)
          by_shard[f.shard].push_back(k);
  for (auto& [shard, part] : by_shard)
    self->send(caf::actor_cast<shard_replica_actor>(shard), subscribe_atom::value,
               local_atom::value, std::move(part), sink);
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

// -- roles ---------------------------------------------------------------------------

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
  start_leveling(self, s, true);
  st.roles.promoted.push_back(s);
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
  st.roles.stepped_down.push_back(s);
}

/// Lifts the fence of `stream`, whose table still names this node its primary:
/// followers dropped while it was fenced are seeded again, and the stream is
/// brought level before it takes writes.
void lead_again(shard_ptr self, uint32_t s, primary_stream& stream) {
  stream.unfence();
  for (auto& f : stream.followers())
    if (f.shard && f.state == link_state::idle)
      seed(self, s, stream, f);
  start_leveling(self, s, false);
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
    // Fenced by an election that committed this table, or by one (or a follower
    // fenced by one) that did not commit and is no longer pending here: lead again.
    // A follower that still knows a higher epoch refuses the next item, and the
    // stream is fenced again.
    auto unfence = stream->fenced()
                   && (a.epoch >= stream->fenced_by() || st.election_fences.count(s) == 0);
    configure_stream(self, s, a, a.epoch, {}, 0, false);
    st.unfence_probes.erase(s);
    if (unfence)
      lead_again(self, s, *stream);
    return;
  }
  if (auto* rep = st.replica_of(s)) {
    if (a.epoch >= rep->cursor.fence)
      promote(self, s, a);
    return;
  }
  if (!replicated || a.epoch == 1 || a.empty) {
    // A new cluster, a slice without replicas, or one the directory's election
    // found empty everywhere: start empty.
    auto* sl = st.install(s, std::make_unique<slice_state>(s));
    sl->epoch = a.epoch;
    if (a.empty && a.epoch > 1)
      st.roles.started_empty.push_back(s);
    if (replicated)
      configure_stream(self, s, a, a.epoch, stream_position{a.epoch, 0}, 0, false);
  }
  else
    st.roles.without_replica.push_back(s); // refuses writes rather than start empty
}

// -- the follower's side -----------------------------------------------------------

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
      if (it.write >= b.writes.size() || it.range >= b.writes[it.write].ranges.size())
        return refuse();
      auto& w = b.writes[it.write];
      auto& r = w.ranges[it.range];
      if (r.slice != it.slice || r.begin > r.end || r.end > w.samples.size())
        return refuse();
      apply_context ctx;
      ctx.now_ms = it.now_ms;
      ctx.lateness_ms = st.cfg.lateness_ms;
      ctx.accuracy = st.cfg.accuracy;
      ctx.staleness_ms = st.cfg.staleness_ms;
      // The primary's dedup eviction, by the item's time: the same decisions here.
      ctx.producer_idle_ms = st.cfg.producer_idle_ms;
      ctx.max_producers = st.cfg.max_producers_per_slice;
      st.ignored.clear();
      auto out = rep.state->apply(w, r, ctx, st.ignored);
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
  } else if (st.fence_epoch(s) > it.epoch) {
    return replica_ack{s, ack_code::stale, st.fence_epoch(s), 0, it.seq};
  }
  return replica_ack{s, ack_code::unseeded, 0, 0, it.seq};
}

namespace {

/// Slice ids up to which `on_replicate` finds a slice's answer by index; above it
/// (only a corrupt or hostile batch) by a search.
constexpr uint32_t max_slot_slice = 1u << 20;

/// The index in `out` of the answer for `slice`, and whether it is new (then the
/// caller appends it at that index). `slot` maps slice ids to index + 1.
std::pair<uint32_t, bool> answer_slot(std::vector<uint32_t>& slot,
                                      const std::vector<replica_ack>& out, uint32_t slice) {
  auto next = static_cast<uint32_t>(out.size());
  if (slice >= max_slot_slice) {
    for (uint32_t i = 0; i < next; ++i)
      if (out[i].slice == slice)
        return {i, false};
    return {next, true};
  }
  if (slot.size() <= slice)
    slot.resize(slice + 1, 0);
  if (slot[slice] != 0)
    return {slot[slice] - 1, false};
  slot[slice] = next + 1;
  return {next, true};
}

/// Answers the requesters of the batch's writes this replica applied in full, when
/// they are on this node: the primary applied them too, so a write quorum of two
/// holds them (replication's `near_ack`).
void answer_nears(shard_ptr self, const replica_batch& b) {
  auto& applied = self->state.item_applied;
  for (auto& n : b.nears) {
    if (!n.to || n.to.node() != self->node() || n.items.empty())
      continue;
    auto all = std::all_of(n.items.begin(), n.items.end(), [&](uint32_t k) {
      return k < applied.size() && applied[k];
    });
    if (!all)
      continue;
    caf::anon_send(n.to, near_ack_atom::value, n.token, n.result);
    self->state.cfg.counters->near_answers.fetch_add(1, std::memory_order_relaxed);
  }
}

/// Whether follower replica `rep` lacks items its primary has committed: the
/// commit point `c` (of a primary the replica is not fenced against) lies beyond its
/// last item. Sequence numbers continue across a slice's epochs, so this holds for
/// a new primary's stream too. Items reach a follower in the order they were sent,
/// and a commit point covers only items sent before it, so a replica behind it on a
/// streamed link missed one (a batch lost with a connection, a link restarted on a
/// new handle, a refusal that was not heard); it answers as for a gap and is seeded
/// again, instead of waiting, stale, for a next item that may never come. (A primary
/// ignores such an answer while it seeds the follower.)
bool behind_commit(const follower_replica& rep, const commit_note& c) {
  return c.epoch >= rep.cursor.fence && c.seq > rep.cursor.last.seq;
}

} // namespace

replica_acks on_replicate(shard_ptr self, const replica_batch& b) {
  auto& st = self->state;
  replica_acks reply;
  auto& out = reply.xs;
  out.reserve(std::min<size_t>(b.items.size(), 1024));
  // One answer per slice, in the order of the slices' first items; a batch of
  // writes that queued up together may hold several items of one slice.
  auto& slot = st.ack_slot;
  auto& applied = st.item_applied;
  applied.assign(b.nears.empty() ? 0 : b.items.size(), false);
  for (size_t k = 0; k < b.items.size(); ++k) {
    auto& it = b.items[k];
    auto [pos, fresh] = answer_slot(slot, out, it.slice);
    if (fresh)
      out.push_back(replica_ack{it.slice, ack_code::ok, 0, 0, 0});
    else if (out[pos].code != ack_code::ok)
      continue; // the slice's earlier item was refused: so are the later ones
    auto i = out.begin() + pos;
    auto* rep = st.replica_of(it.slice);
    if (rep == nullptr || st.hosted(it.slice) != nullptr
        || st.export_of(it.slice) != nullptr) {
      *i = refuse_unfollowed(self, it);
      continue;
    }
    auto code = rep->cursor.admit(it, st.fence_epoch(it.slice));
    if (code != ack_code::ok) {
      auto fence = std::max(rep->cursor.fence, st.fence_epoch(it.slice));
      *i = replica_ack{it.slice, code,
                       code == ack_code::stale ? fence : rep->cursor.last.epoch,
                       rep->cursor.last.seq, it.seq};
      continue;
    }
    *i = apply_item(self, *rep, b, it);
    if (!applied.empty())
      applied[k] = i->code == ack_code::ok;
  }
  for (auto& c : b.commits)
    if (auto* rep = st.replica_of(c.slice); rep != nullptr && c.epoch >= rep->cursor.fence) {
      rep->cursor.commit(c.seq);
      if (behind_commit(*rep, c) && c.slice < max_slot_slice
          && (c.slice >= slot.size() || slot[c.slice] == 0))
        out.push_back(replica_ack{c.slice, ack_code::gap, rep->cursor.last.epoch,
                                  rep->cursor.last.seq, c.seq});
    }
  for (auto& a : out)
    if (a.slice < slot.size())
      slot[a.slice] = 0;
  answer_nears(self, b);
  return reply;
}

replica_ack on_seed(shard_ptr self, slice_snapshot& snap) {
  auto& st = self->state;
  auto s = snap.slice;
  auto refuse = [&](ack_code code, uint64_t epoch) {
    return replica_ack{s, code, epoch, 0, 0};
  };
  if (s >= max_slice_count || shard_of(s, st.cfg.shard_count) != st.cfg.index
      || st.export_of(s) != nullptr)
    return refuse(ack_code::unseeded, 0);
  if (auto* sl = st.hosted(s)) {
    if (sl->epoch >= snap.epoch)
      return refuse(ack_code::stale, sl->epoch);
    // A primary at a higher epoch seeds this one: it follows from now on.
    st.drop_slice(s);
  }
  if (auto* m = st.move_of(s); m != nullptr && m->epoch > snap.epoch)
    return refuse(ack_code::stale, m->epoch);
  auto table = st.fence_epoch(s);
  if (auto* rep = st.replica_of(s)) {
    auto code = rep->cursor.admit_seed(snap.epoch, snap.position, table);
    if (code != ack_code::ok)
      return replica_ack{s, code, std::max(rep->cursor.fence, table),
                         rep->cursor.last.seq, 0};
  } else if (snap.epoch < table) {
    return refuse(ack_code::stale, table);
  }
  // Followers emit nothing, but keep the subscribers: a promoted one emits to them.
  auto subscriptions = std::move(snap.subscribers);
  std::string why;
  auto sl = slice_state::restore(snap, why);
  if (!sl)
    return refuse(ack_code::unseeded, 0);
  for (auto& sub : subscriptions)
    for (auto& sink : sub.sinks)
      if (sink)
        add_subscriber(self, sub.key, s, sink);
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
        f.generation = ++st.link_generation;
        stream->lost(f);
      }
}

void announce_commit(shard_ptr self, uint32_t s) {
  auto& st = self->state;
  auto* stream = st.stream_of(s);
  if (stream == nullptr || !stream->take_commit_news())
    return;
  for (auto& f : stream->followers())
    if (f.shard && f.state != link_state::idle)
      outbox_of(self, f.shard, s);
}

/// A stream fenced above its table's epoch while no election it answered is
/// pending here: most likely a follower answered with an election's fence that a
/// later table (which this node applied first) lifted on that follower too. Tries
/// again, at most `max_unfence_probes` times per table and backing off as seeds do
/// (each probe seeds the followers that refused); a follower that still knows a
/// higher epoch refuses, and the stream is fenced again.
void probe_fenced(shard_ptr self, uint32_t s, primary_stream& stream, int64_t now) {
  auto& st = self->state;
  if (!stream.fenced() || stream.fenced_by() <= st.table_epoch(s) || !st.named_primary(s)
      || st.election_fences.count(s) > 0 || st.hosted(s) == nullptr)
    return;
  auto& probe = st.unfence_probes[s];
  if (probe.count >= max_unfence_probes || now < probe.next_at)
    return;
  ++probe.count;
  probe.next_at = now + primary_stream::seed_retry_delay(probe.count);
  lead_again(self, s, stream);
}

/// Tells followers the latest commit points, retries failed seeds, and probes
/// streams fenced by a lifted fence.
void replication_tick(shard_ptr self, int64_t now) {
  auto& st = self->state;
  for (auto& [s, stream] : st.streams)
    probe_fenced(self, s, *stream, now);
  for (auto& [s, stream] : st.streams) {
    bool news = stream->take_commit_news();
    for (auto& f : stream->followers()) {
      if (!f.shard)
        continue;
      if (f.state == link_state::idle) {
        // A fenced stream cannot commit: its seeds would only be refused.
        if (f.retry_at <= now && !stream->fenced() && st.hosted(s) != nullptr)
          seed(self, s, *stream, f);
        continue;
      }
      if (news)
        outbox_of(self, f.shard, s);
    }
  }
  flush(self);
}

/// Whether the latest table names this node the primary of `s` while nothing here
/// serves it at the table's epoch: no slice (no replica to promote, or one fenced
/// above that epoch by an election that never committed) and no move forwarding its
/// writes, a stream fenced above that epoch with no election pending here, or an
/// export frozen without a known outcome.
bool unserved(shard_ptr self, uint32_t s) {
  auto& st = self->state;
  if (!st.named_primary(s))
    return false;
  if (auto* job = st.export_of(s))
    return job->unknown;
  auto e = st.table_epoch(s);
  if (st.hosted(s) == nullptr) {
    auto* m = st.move_of(s);
    return m == nullptr || !m->forwards(e);
  }
  auto* stream = st.stream_of(s);
  return stream != nullptr && stream->fenced() && stream->fenced_by() > e
         && st.election_fences.count(s) == 0;
}

/// Once a second: marks the slices the table has named this node the primary of
/// for `unserved_report_ms` without them being served here. A controller that was
/// deposed in the middle of handoffs can leave such a slice behind (its successor
/// does not know of them); the supervisor reports the mark with the slices' load and
/// the directory elects their primary again, as it does for an unsettled handoff.
void watch_unserved(shard_ptr self, int64_t now) {
  auto& st = self->state;
  if (now < st.next_unserved_check || !st.cfg.counters
      || st.cfg.counters->slice_count == 0)
    return;
  st.next_unserved_check = now + unserved_check_ms;
  auto& c = *st.cfg.counters;
  auto n = std::min<uint32_t>(c.slice_count, static_cast<uint32_t>(st.assignments.size()));
  for (uint32_t s = 0; s < n; ++s) {
    if (shard_of(s, st.cfg.shard_count) != st.cfg.index)
      continue;
    uint64_t mark = 0;
    if (unserved(self, s)) {
      auto since = st.unserved_since.try_emplace(s, now).first->second;
      if (now - since >= unserved_report_ms)
        mark = st.table_epoch(s);
    } else {
      st.unserved_since.erase(s);
    }
    c.slice_unserved[s].store(mark, std::memory_order_relaxed);
  }
}

} // namespace tether::series::internal
