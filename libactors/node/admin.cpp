// The node's operator interface (tether/admin.hpp): requests from a bridge actor to
// the supervisor, the directory and the shards, answered through callbacks.

#include <algorithm>
#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "directory/controller.hpp"
#include "keys/series_key.hpp"
#include "keys/slicing.hpp"
#include "node/bridge.hpp"
#include "node/node_impl.hpp"
#include "outputs/window_order.hpp"
#include "shard/shard.hpp"
#include "supervision/supervisor.hpp"
#include "tether/node.hpp"

namespace tether {

using internal::status_of;

/// What the copies of one node_admin share: the node, a bridge actor to issue
/// requests from and a producer session for reads.
struct node_admin::state {
  state(node n, std::shared_ptr<producer_session> reader)
    : self(std::move(n)),
      timeout(self.options().request_timeout_ms),
      bridge(internal::spawn_bridge(impl().sys, window_sink{},
                                    std::make_shared<outputs::window_order>())),
      reader(std::move(reader)) {
  }

  node::impl& impl() const {
    return *self.impl_of();
  }

  ~state() {
    caf::anon_send_exit(bridge, caf::exit_reason::user_shutdown);
    reader->close();
  }

  node self;
  std::chrono::milliseconds timeout;
  caf::actor bridge;
  std::shared_ptr<producer_session> reader;
};

node_admin::node_admin(std::shared_ptr<state> st) : st_(std::move(st)) {
}

node_admin node::admin() const {
  return node_admin{
    std::make_shared<node_admin::state>(*this, open_session("tether.operator", {}))};
}

bool node_admin::clustered() const {
  return static_cast<bool>(st_->impl().supervisor);
}

bool node_admin::ready() const {
  return st_->impl().ready();
}

void node_admin::table(table_done done) const {
  internal::post(st_->bridge, [dir = st_->impl().directory, timeout = st_->timeout,
                               done = std::move(done)](caf::event_based_actor* self) {
    self->request(dir, timeout, read_atom::value)
      .then([done](assignment_table& t) { done({}, std::move(t)); },
            [done](caf::error& err) { done(status_of(err), {}); });
  });
}

namespace {

/// A standalone node's only peer: itself.
peer_state standalone_peer(const node& n) {
  auto& o = n.options();
  peer_state me;
  me.name = o.name;
  me.gateway = o.host + ":" + std::to_string(o.port);
  me.self = true;
  me.connected = true;
  me.last_heard_ms = 0;
  auto st = n.stats();
  me.series = st.series;
  me.samples_applied = st.samples_applied;
  me.windows_closed = st.windows_closed;
  return me;
}

peer_state peer_of(supervision::peer_status& x) {
  peer_state p;
  p.name = std::move(x.name);
  p.gateway = std::move(x.gateway);
  p.cluster = std::move(x.cluster);
  p.incarnation = x.incarnation;
  p.directory_id = x.directory_id;
  p.self = x.self;
  p.connected = x.connected;
  p.suspect = x.suspect;
  p.last_heard_ms = x.last_heard_ms;
  p.series = x.series;
  p.samples_applied = x.samples_applied;
  p.windows_closed = x.windows_closed;
  return p;
}

moves_state moves_of(directory::controller_report& r) {
  moves_state m;
  m.leader = std::move(r.leader_name);
  for (auto& x : r.moving)
    m.moving.push_back({x.slice, x.from, x.to});
  m.done = r.moves_done;
  m.failed = r.moves_failed;
  m.last_error = std::move(r.last_error);
  m.loaded_slices = r.loaded_slices;
  m.loaded_series = r.loaded_series;
  m.slice_series = std::move(r.slice_series);
  return m;
}

} // namespace

void node_admin::peers(peers_done done) const {
  if (!clustered())
    return done({}, {standalone_peer(st_->self)});
  internal::post(st_->bridge, [sup = st_->impl().supervisor, timeout = st_->timeout,
                               done = std::move(done)](caf::event_based_actor* self) {
    self->request(sup, timeout, read_atom::value)
      .then(
        [done](std::vector<supervision::peer_status>& xs) {
          std::vector<peer_state> out;
          out.reserve(xs.size());
          for (auto& x : xs)
            out.push_back(peer_of(x));
          done({}, std::move(out));
        },
        [done](caf::error& err) { done(status_of(err), {}); });
  });
}

void node_admin::moves(moves_done done) const {
  if (!clustered()) {
    moves_state m;
    m.leader = st_->self.options().name;
    return done({}, std::move(m));
  }
  internal::post(st_->bridge, [sup = st_->impl().supervisor, timeout = st_->timeout,
                               done = std::move(done)](caf::event_based_actor* self) {
    self->request(sup, timeout, directory::report_atom::value)
      .then([done](directory::controller_report& r) { done({}, moves_of(r)); },
            [done](caf::error& err) { done(status_of(err), {}); });
  });
}

void node_admin::admin(admin_request req, admin_done done) const {
  if (!clustered())
    return done({errc::unavailable,
                 "a standalone node has no other node to move slices to"},
                0);
  internal::post(st_->bridge, [sup = st_->impl().supervisor, req = std::move(req),
                               done = std::move(done)](caf::event_based_actor* self) {
    // Moves take as long as the slices' state takes to copy: not the request timeout.
    auto timeout = std::chrono::minutes(2);
    auto ok = [done](uint64_t n) { done({}, n); };
    auto fail = [done](caf::error& err) { done(status_of(err), 0); };
    switch (req.what) {
      case admin_request::op::drain:
        self->request(sup, timeout, directory::drain_atom::value, req.node).then(ok, fail);
        break;
      case admin_request::op::move:
        self->request(sup, timeout, directory::move_atom::value, req.slice, req.node)
          .then(ok, fail);
        break;
      case admin_request::op::rebalance:
        self->request(sup, timeout, directory::rebalance_atom::value).then(ok, fail);
        break;
    }
  });
}

void node_admin::read(std::string key, read_done done) const {
  st_->reader->read(std::move(key), std::move(done));
}

void node_admin::read_local(std::string key, local_read_done done) const {
  auto& opts = st_->self.options();
  series::key_route k;
  std::string error;
  auto code = keys::canonicalise(key, opts.limits.max_labels_per_sample,
                                 opts.limits.max_key_bytes, k.key, error);
  if (code != errc::none)
    return done({errc::invalid_key, "invalid series key: " + error}, {});
  auto& shards = st_->impl().shards;
  if (shards.empty())
    return done({errc::unavailable, "the node has no shards"}, {});
  k.slice = keys::slice_of(keys::key_hash(k.key), opts.slice_count);
  auto shard = shards[series::shard_of(k.slice, static_cast<uint32_t>(shards.size()))];
  internal::post(st_->bridge, [shard, k = std::move(k), timeout = st_->timeout,
                               done = std::move(done)](caf::event_based_actor* self) {
    self->request(shard, timeout, read_atom::value, series::local_atom::value, k)
      .then(
        [done](series_view& v, series::replica_position& p) {
          local_read r;
          r.view = std::move(v);
          r.replica = !p.seeded ? "none" : (p.primary ? "primary" : "follower");
          r.epoch = p.epoch;
          r.seq = p.seq;
          done({}, std::move(r));
        },
        [done](caf::error& err) { done(status_of(err), {}); });
  });
}

namespace {

/// Collects the shards' scrapes; answers once every shard did.
struct scrape_fan {
  size_t remaining;
  scrape_done done;
  std::vector<series_view> out;
  std::vector<std::pair<uint32_t, uint64_t>> slices;
  status st;

  void add(series::shard_scrape& sc) {
    for (auto& v : sc.series)
      out.push_back(std::move(v));
    for (auto& s : sc.slices)
      slices.emplace_back(s.slice, s.series);
    finish_one();
  }

  void fail(const caf::error& err) {
    if (st)
      st = status_of(err);
    finish_one();
  }

  void finish_one() {
    if (--remaining > 0)
      return;
    std::sort(slices.begin(), slices.end());
    done(st, std::move(out), std::move(slices));
  }
};

} // namespace

void node_admin::scrape(scrape_done done) const {
  auto& shards = st_->impl().shards;
  if (shards.empty())
    return done({}, {}, {});
  internal::post(st_->bridge, [shards, timeout = st_->timeout,
                               done = std::move(done)](caf::event_based_actor* self) {
    auto f = std::make_shared<scrape_fan>(scrape_fan{shards.size(), done, {}, {}, {}});
    for (auto& shard : shards)
      self->request(shard, timeout, read_atom::value)
        .then([f](series::shard_scrape& sc) { f->add(sc); },
              [f](caf::error& err) { f->fail(err); });
  });
}

std::vector<cluster_event> node_admin::events_since(uint64_t after) const {
  if (!st_->impl().events)
    return {};
  return st_->impl().events->since(after);
}

} // namespace tether
