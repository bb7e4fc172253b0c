// The export and the import of a slice handoff (docs/architecture.md, "Moving a
// slice"): the source freezes the slice, sends its snapshot, and forwards what comes
// for it once the destination acknowledged the import.
#include <algorithm>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "shard/shard.hpp"
#include "shard/shard_state.hpp"
#include "tether/tether.hpp"

namespace tether::series::internal {

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
    if (job.replicated) {
      // A follower now: it keeps the subscribers, in case it leads again.
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
      remove_subscriptions(self, s);
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

/// Installs the slice of a handoff (`import_atom`; see shard_import_actor).
caf::result<uint64_t> on_import(shard_ptr self, slice_snapshot& snap) {
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
  // A table or an election already fenced the slice at or above the import's
  // epoch: the handoff was overtaken (abandoned, then elected elsewhere).
  auto fence = st.fence_epoch(s);
  if (auto* rep = st.replica_of(s))
    fence = std::max(fence, rep->cursor.fence);
  if (fence >= snap.epoch)
    return refuse("it is fenced at epoch " + std::to_string(fence) + " here");
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
  st.roles.imported.push_back(s);
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
}

/// Withdraws an import whose reply the exporter did not get in time (`abort_atom`).
void on_abort(shard_ptr self, uint32_t s, uint64_t epoch) {
  auto& st = self->state;
  auto* sl = st.hosted(s);
  if (sl == nullptr || sl->epoch != epoch || st.export_of(s) != nullptr)
    return;
  if (s < st.assignments.size() && st.self_member >= 0
      && st.assignments[s].primary == st.self_member
      && st.assignments[s].epoch >= epoch)
    return; // a table made it primary here: not the import's to undo
  st.drop_slice(s);
  st.roles.withdrawn.push_back(s);
}

/// Hands slice `s` to `dest` at `new_epoch` (`export_atom`): freezes it, sends its
/// snapshot, and forwards to `dest` once the import is acknowledged.
caf::result<uint64_t> on_export(shard_ptr self, uint32_t s, uint64_t new_epoch,
                                shard_import_actor& dest) {
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
        bool lost = err == caf::sec::request_timeout;
        auto* job = self->state.export_of(s);
        if (lost && job != nullptr && job->replicated) {
          job->unknown = true; // until a table settles the slice
          decide(self, s);     // one may have come during the export
        } else
          finish_export(self, s, false);
        // The import may still arrive: withdraw it (messages between two
        // actors stay in order). Its followers may have seen it already.
        if (lost)
          self->send(dest, abort_atom::value, s, new_epoch);
        promise.deliver(std::move(err));
      });
  return promise;
}

} // namespace tether::series::internal
