#pragma once

// The state of a shard actor and the functions its files share: shard.cpp (data
// path, handoff, roles) and shard_replication.cpp (the replication stream's both
// sides). Private to series/: nothing outside includes it.

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "shard/slice_map.hpp"
#include "replication/follower_cursor.hpp"
#include "replication/primary_stream.hpp"
#include "series/input_tracker.hpp"
#include "shard/shard.hpp"
#include "series/slice_state.hpp"
#include "tether/tether.hpp"
#include "wire/codec.hpp"

namespace tether::series::internal {

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
  /// The requester has its answer from elsewhere (a follower's near answer): the
  /// promise is dropped instead of delivered; the requester settled it itself.
  bool answered = false;

  void release() {
    if (--outstanding > 0 || answered)
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
void merge(shard_write_result& into, shard_write_result&& part);

void merge(std::vector<series_view>& into, std::vector<series_view>&& part);

/// Appends the samples of range `r` of `w` to `out` as one more range, keys copied;
/// returns the range's index in `out.ranges`.
uint32_t append_range(shard_write& out, const shard_write& w, const slice_range& r);

/// The samples of range `r` of `w` as a write of their own, keys included, with one
/// range at `epoch`.
shard_write part_of(const shard_write& w, const slice_range& r, uint64_t epoch);

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
  /// The import's answer did not come in time, so the destination may hold the
  /// slice at `new_epoch` and may have fenced the followers there: a replicated
  /// slice stays frozen, refusing new writes and reads, until a table at
  /// `new_epoch` or later settles who leads it (the directory elects a slice whose
  /// handoff ended without a known outcome).
  bool unknown = false;
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

/// What queued up for one follower shard since the last send: sent as one message.
struct outbound {
  replica_batch batch;
  std::vector<uint32_t> slices; ///< slices with items (or commit news) in it
  std::vector<bool> listed;     ///< by slice id: in `slices`
  /// The write being dispatched whose ranges queue here, and the items that refer
  /// to them (item index, range index in `*open`): `seal_writes` adds their
  /// samples to the batch once the write's last range is dispatched.
  const shard_write* open = nullptr;
  std::vector<std::pair<uint32_t, uint32_t>> open_items;
  uint64_t open_samples = 0;
  /// Per entry of `batch.nears`: the reply of its write and the slices of its
  /// items. Once this follower's answer to the batch acknowledges all of those
  /// slices, it has sent the near answer, and the reply is not delivered.
  struct near_reply {
    std::shared_ptr<pending_reply<shard_write_result>> reply;
    std::vector<uint32_t> slices;
  };
  std::vector<near_reply> near_replies;

  void list(uint32_t slice) {
    if (slice >= listed.size())
      listed.resize(slice + 1, false);
    if (!listed[slice]) {
      listed[slice] = true;
      slices.push_back(slice);
    }
  }
};

/// How often a stream fenced above its table's epoch tries again per table.
constexpr uint32_t max_unfence_probes = 5;

/// How long the table may name this node the primary of a slice it does not serve
/// before the shard reports it (`node_counters::slice_unserved`); how often it looks.
constexpr int64_t unserved_report_ms = 5000;
constexpr int64_t unserved_check_ms = 1000;

/// Role changes of a shard's slices not yet logged: one line per kind and batch
/// (a failover promotes hundreds of slices at once).
struct role_changes {
  std::vector<uint32_t> promoted;        ///< a follower replica now leads
  std::vector<uint32_t> without_replica; ///< leads without a replica: refuses writes
  std::vector<uint32_t> stepped_down;    ///< a primary now follows
  std::vector<uint32_t> seeded;          ///< a follower was sent the slice's state
  std::vector<uint32_t> started_empty;   ///< an election found no state: leads empty
  std::vector<uint32_t> imported;        ///< a handoff installed the slice here
  std::vector<uint32_t> withdrawn;       ///< an import undone: its answer was lost

  bool empty() const noexcept {
    return promoted.empty() && without_replica.empty() && stepped_down.empty()
           && seeded.empty() && started_empty.empty() && imported.empty()
           && withdrawn.empty();
  }
};

struct shard_state {
  static inline const char* name = "tether.shard";

  shard_config cfg;
  int32_t self_member = -1;
  uint64_t table_version = 0;
  role_changes roles; ///< logged after a table and on the next tick
  uint32_t rf = 1; ///< the latest table's replication factor
  std::vector<member> members; ///< the latest table's members
  /// The latest table's assignments, by slice id.
  std::vector<slice_assignment> assignments;
  /// Slices this shard serves as primary, by slice id.
  slice_map<std::unique_ptr<slice_state>> slices;
  /// The replication streams of the replicated slices among them.
  slice_map<std::unique_ptr<primary_stream>> streams;
  /// Slices this shard follows (seeded follower replicas).
  slice_map<follower_replica> replicas;
  /// Shards of the other connected nodes, by name and index.
  std::map<std::string, std::vector<caf::actor>> peers;
  std::set<caf::actor_addr> watched; ///< follower shards monitored
  uint64_t link_generation = 0; ///< numbers the starts of follower links
  std::map<caf::actor, outbound> outbox;
  /// Deadlines of the batches sent to followers (sent without a CAF timeout).
  requests::deadlines batch_deadlines;
  bool flush_scheduled = false; ///< a replica_flush_atom is on its way to this shard
  /// Scratch of on_replicate: by slice id, the index + 1 of its answer (0: none).
  std::vector<uint32_t> ack_slot;
  /// Scratch of `on_replicate`: by item index, whether the item was applied.
  std::vector<bool> item_applied;
  /// Read barriers appended since the last flush, by slice: reads that arrive
  /// before it goes out share one (`confirm_leading`).
  slice_map<uint64_t> read_barriers;
  /// Slices being exported (frozen), and slices moved away from here.
  slice_map<export_job> exporting;
  slice_map<move_record> moved_to;
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
  /// Slices the latest table names this node the primary of that are not served
  /// here, by slice: since when (`watch_unserved`).
  slice_map<int64_t> unserved_since;
  int64_t next_unserved_check = 0;

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

  /// Where the writes, reads and subscriptions of moved slice go: the destination
  /// shard as the latest connection to its node reaches it. The handle taken at the
  /// export dies with that connection (CAF kills a node's proxies when its
  /// connection breaks, and a dead proxy drops what it is sent); the shard's id on
  /// that node stays the same.
  shard_import_actor dest_of(const move_record& m) const {
    auto node = m.dest.node();
    auto id = m.dest.id();
    for (auto& entry : peers)
      for (auto& s : entry.second)
        if (s && s.node() == node && s.id() == id)
          return caf::actor_cast<shard_import_actor>(s);
    return m.dest;
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

  /// An epoch a directory election fenced follower replicas at, and the table
  /// version it proposes.
  struct election_fence {
    uint64_t epoch = 0;
    uint64_t version = 0;
  };

  /// The fences of elections not decided yet (slice -> fence). A fence goes when a
  /// table reaches its epoch (the election committed) or its version without the
  /// epoch (another table won the version: the election did not commit and runs
  /// again, with a fence of its own, if it is still needed).
  slice_map<election_fence> election_fences;

  /// Probes of a stream fenced above its table's epoch since the latest table
  /// (replication_tick: probe_fenced), and when the next may go.
  struct unfence_probe {
    uint32_t count = 0;
    int64_t next_at = 0; ///< node clock ms
  };
  slice_map<unfence_probe> unfence_probes;

  /// The lowest epoch a follower replica of `s` accepts items and seeds from: the
  /// latest table's, or an election's above it.
  uint64_t fence_epoch(uint32_t s) const {
    auto e = table_epoch(s);
    if (!election_fences.empty())
      if (auto i = election_fences.find(s); i != election_fences.end())
        e = std::max(e, i->second.epoch);
    return e;
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
    ctx.max_sequence_jump = cfg.max_sequence_jump;
    ctx.producer_idle_ms = cfg.producer_idle_ms;
    ctx.max_producers = cfg.max_producers_per_slice;
    if (cfg.max_series > 0) {
      auto have = cfg.counters->series.load(std::memory_order_relaxed);
      ctx.series_room = have < cfg.max_series ? cfg.max_series - have : 0;
    }
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

// -- shared between the shard's files ---------------------------------------------

// shard.cpp

/// Sends closed windows to the subscribers of their keys and to the exporter.
void emit(shard_ptr self, std::vector<series_view>&& views);

/// Makes slice `s` follow the latest table, unless its export is under way.
void decide(shard_ptr self, uint32_t s);

/// Adds `sink` as a subscriber of `key` (monitored; dropped when it goes).
void add_subscriber(shard_ptr self, const std::string& key, uint32_t slice,
                    const caf::actor& sink);

/// Forgets the subscriptions to the keys of slice `s`.
void remove_subscriptions(shard_ptr self, uint32_t s);

/// Closes the windows due by `now` and emits them.
void close_due(shard_ptr self, int64_t now);

/// Handles an item held back while its slice was frozen for an export.
void replay(shard_ptr self, buffered_item& item);

// shard_handoff.cpp

/// Ends the export of slice `s` (moved: the import was acknowledged).
void finish_export(shard_ptr self, uint32_t s, bool moved);

caf::result<uint64_t> on_import(shard_ptr self, slice_snapshot& snap);

void on_abort(shard_ptr self, uint32_t s, uint64_t epoch);

caf::result<uint64_t> on_export(shard_ptr self, uint32_t s, uint64_t new_epoch,
                                shard_import_actor& dest);

// shard_replication.cpp

/// Queues `it` (and, for a write item, the samples of `r` of `w`) for every follower
/// of `stream` that is streamed to; `flush` sends the queue.
void send_item(shard_ptr self, primary_stream& stream, const replica_item& it,
               const shard_write* w = nullptr, const slice_range* r = nullptr);

/// Sends every follower shard what queued up for it, one message each.
void flush(shard_ptr self);

/// Adds the samples of the write being dispatched to every batch whose items refer
/// to it: the whole write when the batch carries most of it (one copy, no per-range
/// work), its ranges one by one otherwise. Called when the write is dispatched.
void seal_writes(shard_ptr self);

/// Flushes once the messages already in the mailbox are handled: the writes that
/// queued up behind this one go to the followers in the same messages.
void flush_soon(shard_ptr self);

/// Queues the commit point of slice `s`'s stream for its live followers if they
/// have not been told it yet (`flush` sends it).
void announce_commit(shard_ptr self, uint32_t s);

/// Why a replicated slice takes no writes now.
std::string why_not_writable(const primary_stream& stream);

/// The table names this node the primary of slice `s`.
void lead(shard_ptr self, uint32_t s, const slice_assignment& a);

/// This node no longer leads slice `s` (see shard_replication.cpp).
void step_down(shard_ptr self, uint32_t s, const slice_assignment& a, bool follow);

/// Makes the replication stream of hosted slice `s` match assignment `a`.
primary_stream* configure_stream(shard_ptr self, uint32_t s, const slice_assignment& a,
                                 uint64_t epoch, stream_position last,
                                 uint64_t committed, bool probe);

/// Tells the followers of the replicated slices of `keys` that `sink` subscribed
/// to them.
void share_subscriptions(shard_ptr self, const std::vector<key_route>& keys,
                         const caf::actor& sink);

/// Sends a new primary's first item (see shard_replication.cpp).
void start_leveling(shard_ptr self, uint32_t s, bool adopted);

replica_acks on_replicate(shard_ptr self, const replica_batch& b);

/// Lets the follower shard on `requester`'s node answer write `w` (whose `items`
/// items were just queued) with `result`, if that follower's queue holds every one
/// of them (replication's `near_ack`).
void attach_near(shard_ptr self, const caf::strong_actor_ptr& requester,
                 const shard_write& w, shard_write_result result, size_t items,
                 std::shared_ptr<pending_write> reply);

replica_ack on_seed(shard_ptr self, slice_snapshot& snap);

void on_node_shards(shard_ptr self, std::vector<node_shards>& nodes);

void on_follower_down(shard_ptr self, const caf::actor_addr& who);

void replication_tick(shard_ptr self, int64_t now);

void watch_unserved(shard_ptr self, int64_t now);

} // namespace tether::series::internal
