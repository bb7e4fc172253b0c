#include "routing/ingest.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "keys/series_key.hpp"
#include "keys/slicing.hpp"
#include "routing/split.hpp"
#include "series/dedup_window.hpp"
#include "tether/tether.hpp"
#include "wire/codec.hpp"

namespace tether::routing {

namespace {

struct write_fan_in;

/// Where the answer of a batch goes: the response promise of a request, or the
/// callback of a write sent with a `write_reply`.
struct write_answer {
  caf::typed_response_promise<write_ack> rp;
  std::function<void(caf::expected<write_ack>)> fn;

  void deliver(write_ack ack) {
    if (fn)
      fn(std::move(ack));
    else
      rp.deliver(std::move(ack));
  }

  void deliver(caf::error err) {
    if (fn)
      fn(std::move(err));
    else
      rp.deliver(std::move(err));
  }
};

/// One shard write of a batch, waiting for its answer; counted once.
struct write_part {
  std::shared_ptr<write_fan_in> fan;
  bool done = false;
  std::vector<uint32_t> slices; ///< of a write to another node: its slices
};

/// A read sent to a shard on another node: answered once, by the shard, by its
/// timeout, or when the connection to its node breaks.
struct read_wait {
  caf::typed_response_promise<series_view> rp;
  bool done = false;
};

struct ingest_state {
  static inline const char* name = "tether.ingest";

  std::shared_ptr<const ingest_context> ctx;
  std::string producer;
  std::unique_ptr<wire::batch_keyer> keyer;
  splitter split;
  std::vector<routed_write> routed;
  std::vector<uint32_t> unroutable;
  /// Shard writes waiting for a shard on another node, by shard (each monitored
  /// once): when the connection to that node breaks they fail at once, not at
  /// their timeout.
  std::map<caf::actor_addr, std::vector<std::shared_ptr<write_part>>> remote;
  /// Reads waiting for a shard on another node, the same way.
  std::map<caf::actor_addr, std::vector<std::shared_ptr<read_wait>>> remote_reads;
  /// The routing table version the remote writes were last checked against, and
  /// whether the check timer runs (only while remote writes wait).
  uint64_t checked_version = 0;
  bool checking = false;
  /// The highest sequence of this producer's session that slices applied or may have
  /// (a refused write does not count): a write far below it is refused whole before
  /// any slice sees it (SEQUENCE_TOO_OLD applies nothing).
  uint64_t highest_sent = 0;
  /// Deadlines of the writes sent to shards (sent without a CAF timeout).
  requests::deadlines write_deadlines;
  /// Writes to a primary on another node that a follower on this node may answer
  /// (`near_ack`): the requests' response ids by the number sent with them;
  /// forgotten once the request has its answer.
  std::unordered_map<uint64_t, caf::message_id> nears;
  uint64_t next_token = 0;
};

/// How often waiting remote writes are checked against the routing table.
constexpr std::chrono::milliseconds reroute_interval{25};

using ingest_ptr = ingest_full_actor::stateful_pointer<ingest_state>;

/// Collects the replies of one batch's shard writes.
struct write_fan_in {
  uint64_t sequence = 0;
  size_t remaining = 0;
  size_t ranges = 0;
  uint32_t applied = 0;
  uint32_t late = 0;
  uint32_t duplicate_ranges = 0;
  errc code = errc::none;
  std::string message;
  /// The session's highest used sequence (ingest_state::highest_sent), raised when
  /// this write is applied or may have been (UNAVAILABLE: the client sends it again).
  uint64_t* highest = nullptr;

  void fail(errc c, std::string msg) {
    if (code == errc::none) {
      code = c;
      message = std::move(msg);
    }
  }

  /// Where the ack or the error goes.
  write_answer to;

  void finish() {
    if (highest != nullptr && (code == errc::none || code == errc::unavailable))
      *highest = std::max(*highest, sequence);
    if (code != errc::none) {
      to.deliver(make_error(code, std::move(message)));
      return;
    }
    write_ack ack;
    ack.sequence = sequence;
    ack.accepted = applied;
    ack.duplicate = duplicate_ranges == ranges;
    ack.late = late;
    to.deliver(ack);
  }
};

std::chrono::milliseconds timeout_of(ingest_ptr self) {
  return std::chrono::milliseconds(self->state.ctx->request_timeout_ms);
}

/// Counts the answer of one shard write, unless it was counted already.
void answer(const std::shared_ptr<write_part>& part, series::shard_write_result* res,
            const std::string& failure) {
  if (part->done)
    return;
  part->done = true;
  auto& fan = *part->fan;
  if (res != nullptr) {
    fan.applied += res->applied;
    fan.late += res->late;
    fan.duplicate_ranges += res->duplicate_ranges;
    if (res->code != errc::none)
      fan.fail(res->code, std::move(res->message));
  } else {
    fan.fail(errc::unavailable, failure);
  }
  if (--fan.remaining == 0)
    fan.finish();
}

/// Forgets a remote shard write that has its answer.
void settle(ingest_ptr self, const caf::actor_addr& shard,
            const std::shared_ptr<write_part>& part) {
  auto i = self->state.remote.find(shard);
  if (i == self->state.remote.end())
    return;
  auto& parts = i->second;
  parts.erase(std::remove(parts.begin(), parts.end(), part), parts.end());
}

/// The node of a remote shard went away: its writes fail now (retryable).
void shard_down(ingest_ptr self, const caf::actor_addr& shard) {
  auto& st = self->state;
  if (auto j = st.remote_reads.find(shard); j != st.remote_reads.end()) {
    auto reads = std::move(j->second);
    st.remote_reads.erase(j);
    for (auto& r : reads)
      if (!r->done) {
        r->done = true;
        r->rp.deliver(make_error(errc::unavailable,
                                 "the node of the slice primary went away"));
      }
  }
  auto i = st.remote.find(shard);
  if (i == st.remote.end())
    return;
  auto parts = std::move(i->second);
  st.remote.erase(i);
  for (auto& part : parts)
    answer(part, nullptr, "the node of a slice primary went away");
}

/// Fails the remote writes whose slices the routing table now routes elsewhere (a
/// failover or a move committed while they waited): the producer retries them at
/// once on the new primary, which its dedup window keeps exactly once. Runs while
/// remote writes wait.
void check_reroutes(ingest_ptr self) {
  auto& st = self->state;
  st.checking = false;
  if (st.remote.empty())
    return;
  auto table = st.ctx->cache->load();
  if (table && table->version != st.checked_version) {
    st.checked_version = table->version;
    for (auto i = st.remote.begin(); i != st.remote.end();) {
      auto& parts = i->second;
      auto stale = [&](const std::shared_ptr<write_part>& part) {
        for (auto s : part->slices)
          if (s >= table->slices.size() || table->slices[s].shard.address() != i->first)
            return true;
        return false;
      };
      std::vector<std::shared_ptr<write_part>> failed;
      for (auto& part : parts)
        if (stale(part))
          failed.push_back(part);
      parts.erase(std::remove_if(parts.begin(), parts.end(), stale), parts.end());
      for (auto& part : failed)
        answer(part, nullptr,
               "slice " + std::to_string(part->slices.front())
                 + " has a new primary since this write was sent; retry");
      i = parts.empty() ? st.remote.erase(i) : std::next(i);
    }
  }
  if (!st.remote.empty()) {
    st.checking = true;
    self->delayed_send(self, reroute_interval, reroute_atom::value);
  }
}

/// Monitors a remote shard once, for both writes and reads.
void watch_remote(ingest_ptr self, const series::shard_actor& shard) {
  auto addr = shard.address();
  auto& st = self->state;
  if (st.remote.count(addr) == 0 && st.remote_reads.count(addr) == 0)
    self->monitor(shard);
}

/// Sends the parts of `batch` to the shards of their slices; `to` gets the ack once
/// every shard answered, or the first error.
void dispatch(ingest_ptr self, wire::keyed_batch& batch, write_answer to) {
  auto& st = self->state;
  auto table = st.ctx->cache->load();
  if (!table) {
    to.deliver(make_error(errc::unavailable, "the node has no routing table yet"));
    return;
  }
  batch.producer = st.producer;
  if (batch.sequence + series::dedup_window::span < st.highest_sent) {
    // Every slice this session wrote to at highest_sent would refuse it, others
    // might not: refuse all of it here, so that none of it is applied.
    to.deliver(make_error(errc::sequence_too_old,
                          "sequence " + std::to_string(batch.sequence) + " is more than "
                            + std::to_string(series::dedup_window::span)
                            + " below sequence " + std::to_string(st.highest_sent)
                            + " this session already sent for producer '" + st.producer
                            + "': nothing applied"));
    return;
  }
  st.split.split(batch, *table, st.routed, st.unroutable);
  if (!st.unroutable.empty()) {
    // Refuse before sending anything: nothing of the batch is applied.
    to.deliver(make_error(errc::unavailable,
                          "slice " + std::to_string(st.unroutable.front())
                            + " has no reachable primary"));
    return;
  }
  auto fan = std::make_shared<write_fan_in>();
  fan->to = std::move(to);
  fan->sequence = batch.sequence;
  fan->highest = &st.highest_sent;
  fan->remaining = st.routed.size();
  for (auto& r : st.routed)
    fan->ranges += r.write.ranges.size();
  for (auto& r : st.routed) {
    auto part = std::make_shared<write_part>(write_part{fan, false, {}});
    // Which slices wait on this shard, for the error text of a timeout (no string
    // is built unless it is needed).
    auto first_slice = r.write.ranges.empty() ? 0u : r.write.ranges.front().slice;
    auto more_slices = r.write.ranges.empty() ? size_t{0} : r.write.ranges.size() - 1;
    caf::actor_addr remote;
    if (r.shard.node() != self->node()) {
      remote = r.shard.address();
      watch_remote(self, r.shard);
      st.remote[remote].push_back(part);
      part->slices.reserve(r.write.ranges.size());
      for (auto& range : r.write.ranges)
        part->slices.push_back(range.slice);
      if (!st.checking) {
        st.checking = true;
        st.checked_version = table->version;
        self->delayed_send(self, reroute_interval, reroute_atom::value);
      }
      r.write.near_token = ++st.next_token;
    }
    auto token = r.write.near_token;
    // No CAF timeout: the deadline is kept here (one sweep timer, not two clock
    // wake-ups per shard write); past it the error handler runs as after a timeout.
    auto h = self->request(r.shard, caf::infinite, write_atom::value, std::move(r.write));
    auto id = h.id();
    if (token != 0)
      st.nears.emplace(token, id);
    if (st.write_deadlines.add(id))
      self->delayed_send(self, st.write_deadlines.interval(), requests::sweep_atom::value);
    h.then(
      [self, part, remote, id, token](series::shard_write_result& res) {
        self->state.write_deadlines.done(id);
        if (token != 0)
          self->state.nears.erase(token);
        if (remote)
          settle(self, remote, part);
        answer(part, &res, {});
      },
      [self, part, remote, first_slice, more_slices, id, token](caf::error& err) {
        self->state.write_deadlines.done(id);
        if (token != 0)
          self->state.nears.erase(token);
        if (remote)
          settle(self, remote, part);
        answer(part, nullptr,
               "the primary of slice " + std::to_string(first_slice)
                 + (more_slices > 0
                      ? " (and " + std::to_string(more_slices) + " more on its shard)"
                      : std::string{})
                 + " did not answer: " + to_string(err));
      });
  }
  st.routed.clear();
}

/// A follower on this node applied every item of a write whose primary is on
/// another node: with the primary it makes the write quorum, so its answer is the
/// answer of the request to the primary. It is handed to the request's handler as
/// that answer (as a deadline's timeout is), which settles the request: the primary
/// does not answer once it learns the follower did, and if it did answer first, or
/// does anyway, the later answer is dropped.
void near_answer(ingest_ptr self, uint64_t token, series::shard_write_result& res) {
  auto& st = self->state;
  auto i = st.nears.find(token);
  if (i == st.nears.end())
    return;
  auto id = i->second;
  st.nears.erase(i);
  self->eq_impl(id, self->ctrl(), self->context(), std::move(res));
}

/// A write sent as a request: answered through its response promise.
caf::typed_response_promise<write_ack> dispatch(ingest_ptr self,
                                                wire::keyed_batch& batch) {
  auto rp = self->make_response_promise<write_ack>();
  dispatch(self, batch, write_answer{rp, {}});
  return rp;
}

/// Canonicalises a key and finds its route, or explains why it cannot.
caf::expected<series::key_route> route_key(ingest_ptr self, const std::string& text,
                                           const route_table& table) {
  auto& lim = self->state.ctx->limits;
  series::key_route k;
  std::string error;
  auto code = keys::canonicalise(text, lim.max_labels_per_sample,
                                 lim.max_key_bytes, k.key, error);
  if (code != errc::none)
    return make_error(errc::invalid_key, "invalid series key: " + error);
  k.slice = keys::slice_of(keys::key_hash(k.key), table.slice_count());
  return k;
}

/// The route of key `text` in `table`, if its slice has a reachable primary, or why
/// there is none.
caf::expected<series::key_route> primary_route(ingest_ptr self, const std::string& text,
                                               const route_table& table) {
  auto k = route_key(self, text, table);
  if (k && !table.slices[k->slice].shard)
    return make_error(errc::unavailable,
                      "slice " + std::to_string(k->slice) + " has no reachable primary");
  return k;
}

/// Reads the key `text` from its slice's primary, with the deadline of a request.
caf::typed_response_promise<series_view> read_key(ingest_ptr self,
                                                  const std::string& text) {
  auto rp = self->make_response_promise<series_view>();
  auto table = self->state.ctx->cache->load();
  if (!table) {
    rp.deliver(make_error(errc::unavailable, "the node has no routing table yet"));
    return rp;
  }
  auto k = primary_route(self, text, *table);
  if (!k) {
    rp.deliver(k.error());
    return rp;
  }
  auto& r = table->slices[k->slice];
  auto wait = std::make_shared<read_wait>(read_wait{rp, false});
  caf::actor_addr remote;
  if (r.shard.node() != self->node()) {
    remote = r.shard.address();
    watch_remote(self, r.shard);
    self->state.remote_reads[remote].push_back(wait);
  }
  auto forget = [self, remote, wait] {
    if (!remote)
      return;
    auto i = self->state.remote_reads.find(remote);
    if (i != self->state.remote_reads.end())
      i->second.erase(std::remove(i->second.begin(), i->second.end(), wait),
                      i->second.end());
  };
  self->request(r.shard, timeout_of(self), read_atom::value, *k)
    .then(
      [wait, forget](series_view& v) mutable {
        forget();
        if (!wait->done) {
          wait->done = true;
          wait->rp.deliver(std::move(v));
        }
      },
      [wait, forget](caf::error& err) mutable {
        forget();
        if (!wait->done) {
          wait->done = true;
          wait->rp.deliver(make_error(errc::unavailable,
                                      "the slice primary did not answer: "
                                        + to_string(err)));
        }
      });
  return rp;
}

/// Subscribes `sink` to the keys `texts` at their slices' primaries: one request
/// per shard, answered with every current view once all of them answered.
caf::typed_response_promise<std::vector<series_view>>
subscribe_keys(ingest_ptr self, const std::vector<std::string>& texts,
               const caf::actor& sink) {
  using views = std::vector<series_view>;
  auto rp = self->make_response_promise<views>();
  auto table = self->state.ctx->cache->load();
  if (!table) {
    rp.deliver(make_error(errc::unavailable, "the node has no routing table yet"));
    return rp;
  }
  std::map<series::shard_actor, std::vector<series::key_route>> by_shard;
  for (auto& text : texts) {
    auto k = primary_route(self, text, *table);
    if (!k) {
      rp.deliver(k.error());
      return rp;
    }
    by_shard[table->slices[k->slice].shard].push_back(std::move(*k));
  }
  if (by_shard.empty()) {
    rp.deliver(views{});
    return rp;
  }
  struct fan {
    size_t remaining;
    views out;
    caf::error err;
  };
  auto f = std::make_shared<fan>(fan{by_shard.size(), {}, {}});
  for (auto& [shard, keys] : by_shard) {
    self->request(shard, timeout_of(self), subscribe_atom::value,
                  std::move(keys), sink)
      .then(
        [f, rp](views& vs) mutable {
          for (auto& v : vs)
            f->out.push_back(std::move(v));
          if (--f->remaining == 0) {
            if (f->err)
              rp.deliver(f->err);
            else
              rp.deliver(std::move(f->out));
          }
        },
        [f, rp](caf::error& err) mutable {
          if (!f->err)
            f->err = make_error(errc::unavailable,
                                "a slice primary did not answer: "
                                  + to_string(err));
          if (--f->remaining == 0)
            rp.deliver(f->err);
        });
  }
  return rp;
}

ingest_full_actor::behavior_type ingest_behavior(
  ingest_ptr self, std::shared_ptr<const ingest_context> ctx, std::string producer) {
  self->state.keyer = std::make_unique<wire::batch_keyer>(ctx->limits,
                                                          ctx->slice_count);
  self->state.write_deadlines.set_timeout(
    std::chrono::milliseconds(ctx->request_timeout_ms));
  self->state.ctx = std::move(ctx);
  self->state.producer = std::move(producer);
  self->set_down_handler([self](caf::down_msg& msg) { shard_down(self, msg.source); });
  return {
    [self](write_atom, wire::keyed_batch& batch) { return dispatch(self, batch); },
    [self](write_atom, wire::keyed_batch& batch, write_reply& reply) {
      dispatch(self, batch, write_answer{{}, std::move(reply.fn)});
    },
    [self](reroute_atom) { check_reroutes(self); },
    [self](replication::near_ack_atom, uint64_t token, series::shard_write_result& res) {
      near_answer(self, token, res);
    },
    [self](requests::sweep_atom) {
      auto& d = self->state.write_deadlines;
      if (d.sweep(self))
        self->delayed_send(self, d.interval(), requests::sweep_atom::value);
    },
    [self](write_atom, uint64_t seq, std::vector<sample>& xs) {
      wire::keyed_batch batch;
      auto rules = self->state.ctx->rules->load();
      if (auto err = self->state.keyer->key(seq, xs, wire::now_ms(), *rules, batch)) {
        auto rp = self->make_response_promise<write_ack>();
        rp.deliver(make_error(err.code, std::move(err.message)));
        return rp;
      }
      return dispatch(self, batch);
    },
    [self](read_atom, std::string& text) { return read_key(self, text); },
    [self](subscribe_atom, std::vector<std::string>& texts, caf::actor& sink) {
      return subscribe_keys(self, texts, sink);
    },
  };
}

} // namespace

ingest_full_actor spawn_ingest(caf::actor_system& sys,
                               std::shared_ptr<const ingest_context> ctx,
                               std::string producer) {
  return sys.spawn(ingest_behavior, std::move(ctx), std::move(producer));
}

} // namespace tether::routing
