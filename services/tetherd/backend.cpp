#include "backend.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "keys/series_key.hpp"
#include "keys/slicing.hpp"
#include "node/node_impl.hpp"
#include "outputs/window_order.hpp"
#include "routing/ingest.hpp"
#include "tether/tether.hpp"
#include "wire/codec.hpp"

namespace tether::gateway {

namespace {

/// Work posted from an I/O thread into the bridge actor, which may issue requests.
struct bridge_task {
  std::function<void(caf::event_based_actor*)> run;
};

} // namespace
} // namespace tether::gateway

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tether::gateway::bridge_task)

namespace tether::gateway {

session_backend::~session_backend() = default;
backend::~backend() = default;

namespace {

/// Runs tasks and forwards window updates to the session's sink, each window of a
/// series once and in order (see outputs/window_order.hpp).
caf::behavior bridge_behavior(caf::event_based_actor* self, window_sink sink,
                              std::shared_ptr<outputs::window_order> order) {
  return {
    [self](bridge_task& t) { t.run(self); },
    [sink, order](window_atom, std::vector<series_view>& vs) {
      if (!sink)
        return;
      order->filter(vs, wire::now_ms());
      if (!vs.empty())
        sink(std::move(vs));
    },
  };
}

status status_of(const caf::error& err) {
  return {code_of(err), message_of(err)};
}

class session_impl : public session_backend {
public:
  session_impl(caf::actor_system& sys, routing::ingest_full_actor ingest,
               window_sink sink, std::chrono::milliseconds timeout)
    : ingest_(std::move(ingest)),
      // The ingest actor answers within its own request timeout (then UNAVAILABLE
      // naming the slice); this outer bound only catches an ingest actor that died.
      timeout_(2 * timeout + std::chrono::milliseconds(1000)) {
    bridge_ = sys.spawn(bridge_behavior, std::move(sink), order_);
  }

  ~session_impl() override {
    close();
  }

  void write(wire::keyed_batch batch, write_done done) override {
    // Writes are the hot path: straight to the ingest actor, which calls back on its
    // own thread (no bridge actor in between: two thread hand-offs fewer per write).
    // The ingest actor answers every write within its own request timeout
    // (UNAVAILABLE naming the slice): its writes to shards keep deadlines.
    caf::anon_send(ingest_, write_atom::value, std::move(batch),
                   routing::write_reply{[done = std::move(done)](
                                          caf::expected<write_ack> r) {
                     if (r)
                       done({}, *r);
                     else
                       done(status_of(r.error()), {});
                   }});
  }

  void read(std::string key, read_done done) override {
    post([ingest = ingest_, timeout = timeout_, key = std::move(key),
          done = std::move(done)](caf::event_based_actor* self) mutable {
      self->request(ingest, timeout, read_atom::value, std::move(key))
        .then([done](series_view& v) { done({}, std::move(v)); },
              [done](caf::error& err) { done(status_of(err), {}); });
    });
  }

  void subscribe(std::vector<std::string> keys, subscribe_done done) override {
    post([ingest = ingest_, timeout = timeout_, keys = std::move(keys),
          done = std::move(done), order = order_](caf::event_based_actor* self) mutable {
      self->request(ingest, timeout, subscribe_atom::value, std::move(keys),
                    caf::actor_cast<caf::actor>(self))
        .then(
          [done, order](std::vector<series_view>& vs) {
            // Windows of these keys may have reached the bridge before this
            // answer, and windows closed before the read may come after it.
            order->filter_snapshot(vs, wire::now_ms());
            done({}, std::move(vs));
          },
              [done](caf::error& err) { done(status_of(err), {}); });
    });
  }

  void close() override {
    if (bridge_) {
      caf::anon_send_exit(bridge_, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(ingest_, caf::exit_reason::user_shutdown);
      bridge_ = nullptr;
    }
  }

private:
  template <class F>
  void post(F&& f) {
    caf::anon_send(bridge_, bridge_task{std::forward<F>(f)});
  }

  routing::ingest_full_actor ingest_;
  /// Used only inside the bridge actor.
  std::shared_ptr<outputs::window_order> order_ = std::make_shared<outputs::window_order>();
  caf::actor bridge_;
  std::chrono::milliseconds timeout_;
};

class backend_impl : public backend {
public:
  explicit backend_impl(node n)
    : node_(std::move(n)),
      impl_(*node_.internals()),
      timeout_(node_.options().request_timeout_ms) {
    operator_ = std::make_shared<session_impl>(
      impl_.sys, routing::spawn_ingest(impl_.sys, impl_.ingest, "tether.operator"),
      window_sink{}, timeout_);
    bridge_ = impl_.sys.spawn(bridge_behavior, window_sink{},
                              std::make_shared<outputs::window_order>());
    remote_ = std::make_shared<session_impl>(
      impl_.sys,
      routing::spawn_ingest(impl_.sys, impl_.ingest,
                            "remote-write@" + node_.options().name),
      window_sink{}, timeout_);
  }

  ~backend_impl() override {
    caf::anon_send_exit(bridge_, caf::exit_reason::user_shutdown);
  }

  const node_options& options() const override {
    return node_.options();
  }

  std::shared_ptr<const rules::rule_set> rules() const override {
    return impl_.rules->load();
  }

  std::string reload_rules() override {
    return node_.reload_rules();
  }

  node_stats stats() const override {
    return node_.stats();
  }

  void count_batch(errc code) override {
    node_.count_batch(code);
  }

  bool ready() const override {
    return impl_.ready();
  }

  std::shared_ptr<session_backend> open_session(std::string producer,
                                                window_sink on_window) override {
    return std::make_shared<session_impl>(
      impl_.sys, routing::spawn_ingest(impl_.sys, impl_.ingest, std::move(producer)),
      std::move(on_window), timeout_);
  }

  void table(table_done done) override {
    caf::anon_send(bridge_, bridge_task{[dir = impl_.directory, timeout = timeout_,
                                         done = std::move(done)](
                                          caf::event_based_actor* self) {
                     self->request(dir, timeout, read_atom::value)
                       .then([done](assignment_table& t) { done({}, std::move(t)); },
                             [done](caf::error& err) { done(status_of(err), {}); });
                   }});
  }

  void read(std::string key, read_done done) override {
    operator_->read(std::move(key), std::move(done));
  }

  bool clustered() const override {
    return static_cast<bool>(impl_.supervisor);
  }

  void peers(peers_done done) override {
    if (!impl_.supervisor) {
      auto& o = impl_.opts;
      peer_state me;
      me.name = o.name;
      me.gateway = o.host + ":" + std::to_string(o.port);
      me.self = true;
      me.connected = true;
      me.last_heard_ms = 0;
      auto st = node_.stats();
      me.series = st.series;
      me.samples_applied = st.samples_applied;
      me.windows_closed = st.windows_closed;
      done({}, {me});
      return;
    }
    caf::anon_send(bridge_, bridge_task{[sup = impl_.supervisor, timeout = timeout_,
                                         done = std::move(done)](
                                          caf::event_based_actor* self) {
                     self->request(sup, timeout, read_atom::value)
                       .then(
                         [done](std::vector<supervision::peer_status>& xs) {
                           std::vector<peer_state> out;
                           for (auto& x : xs) {
                             peer_state p;
                             p.name = x.name;
                             p.gateway = x.gateway;
                             p.cluster = x.cluster;
                             p.incarnation = x.incarnation;
                             p.directory_id = x.directory_id;
                             p.self = x.self;
                             p.connected = x.connected;
                             p.suspect = x.suspect;
                             p.last_heard_ms = x.last_heard_ms;
                             p.series = x.series;
                             p.samples_applied = x.samples_applied;
                             p.windows_closed = x.windows_closed;
                             out.push_back(std::move(p));
                           }
                           done({}, std::move(out));
                         },
                         [done](caf::error& err) { done(status_of(err), {}); });
                   }});
  }

  void moves(moves_done done) override {
    if (!impl_.supervisor) {
      moves_state m;
      m.leader = impl_.opts.name;
      done({}, std::move(m));
      return;
    }
    caf::anon_send(bridge_, bridge_task{[sup = impl_.supervisor, timeout = timeout_,
                                         done = std::move(done)](
                                          caf::event_based_actor* self) {
                     self->request(sup, timeout, directory::report_atom::value)
                       .then(
                         [done](directory::controller_report& r) {
                           moves_state m;
                           m.leader = r.leader_name;
                           for (auto& x : r.moving)
                             m.moving.push_back({x.slice, x.from, x.to});
                           m.done = r.moves_done;
                           m.failed = r.moves_failed;
                           m.last_error = r.last_error;
                           m.loaded_slices = r.loaded_slices;
                           m.loaded_series = r.loaded_series;
                           m.slice_series = std::move(r.slice_series);
                           done({}, std::move(m));
                         },
                         [done](caf::error& err) { done(status_of(err), {}); });
                   }});
  }

  void admin(admin_request req, admin_done done) override {
    if (!impl_.supervisor) {
      done({errc::unavailable,
            "a standalone node has no other node to move slices to"},
           0);
      return;
    }
    caf::anon_send(
      bridge_,
      bridge_task{[sup = impl_.supervisor, req = std::move(req),
                   done = std::move(done)](caf::event_based_actor* self) {
        auto timeout = std::chrono::minutes(2);
        auto ok = [done](uint64_t n) { done({}, n); };
        auto fail = [done](caf::error& err) { done(status_of(err), 0); };
        switch (req.what) {
          case admin_request::op::drain:
            self->request(sup, timeout, directory::drain_atom::value, req.node)
              .then(ok, fail);
            break;
          case admin_request::op::move:
            self
              ->request(sup, timeout, directory::move_atom::value, req.slice,
                        req.node)
              .then(ok, fail);
            break;
          case admin_request::op::rebalance:
            self->request(sup, timeout, directory::rebalance_atom::value)
              .then(ok, fail);
            break;
        }
      }});
  }

  void scrape(scrape_done done) override {
    caf::anon_send(bridge_, bridge_task{[shards = impl_.shards, timeout = timeout_,
                                         done = std::move(done)](
                                          caf::event_based_actor* self) {
                     struct fan {
                       size_t remaining;
                       std::vector<series_view> out;
                       std::vector<std::pair<uint32_t, uint64_t>> slices;
                       status st;
                     };
                     auto f = std::make_shared<fan>(fan{shards.size(), {}, {}, {}});
                     if (shards.empty())
                       return done({}, {}, {});
                     auto finish = [f, done] {
                       std::sort(f->slices.begin(), f->slices.end());
                       done(f->st, std::move(f->out), std::move(f->slices));
                     };
                     for (auto& shard : shards)
                       self->request(shard, timeout, read_atom::value)
                         .then(
                           [f, finish](series::shard_scrape& sc) {
                             for (auto& v : sc.series)
                               f->out.push_back(std::move(v));
                             for (auto& s : sc.slices)
                               f->slices.emplace_back(s.slice, s.series);
                             if (--f->remaining == 0)
                               finish();
                           },
                           [f, finish](caf::error& err) {
                             if (f->st)
                               f->st = status_of(err);
                             if (--f->remaining == 0)
                               finish();
                           });
                   }});
  }

  void read_local(std::string key, local_read_done done) override {
    auto& lim = node_.options().limits;
    series::key_route k;
    std::string error;
    auto code = keys::canonicalise(key, lim.max_labels_per_sample, lim.max_key_bytes,
                                   k.key, error);
    if (code != errc::none)
      return done({errc::invalid_key, "invalid series key: " + error}, {});
    if (impl_.shards.empty())
      return done({errc::unavailable, "the node has no shards"}, {});
    k.slice = keys::slice_of(keys::key_hash(k.key), node_.options().slice_count);
    auto shard = impl_.shards[series::shard_of(
      k.slice, static_cast<uint32_t>(impl_.shards.size()))];
    caf::anon_send(bridge_,
                   bridge_task{[shard, k = std::move(k), timeout = timeout_,
                                done = std::move(done)](caf::event_based_actor* self) {
                     self->request(shard, timeout, read_atom::value,
                                   series::local_atom::value, k)
                       .then(
                         [done](series_view& v, series::replica_position& p) {
                           local_read r;
                           r.view = std::move(v);
                           r.replica = !p.seeded ? "none"
                                                 : (p.primary ? "primary" : "follower");
                           r.epoch = p.epoch;
                           r.seq = p.seq;
                           done({}, std::move(r));
                         },
                         [done](caf::error& err) { done(status_of(err), {}); });
                   }});
  }

  void remote_write(wire::keyed_batch batch, write_done done) override {
    remote_->write(std::move(batch), std::move(done));
  }

  uint64_t next_remote_sequence() override {
    auto now_us = static_cast<uint64_t>(wire::now_ms()) * 1000;
    auto last = remote_seq_.load();
    uint64_t next;
    do {
      next = std::max(last + 1, now_us);
    } while (!remote_seq_.compare_exchange_weak(last, next));
    return next;
  }

  std::vector<events::cluster_event> events_since(uint64_t after) const override {
    if (!impl_.events)
      return {};
    return impl_.events->since(after);
  }

private:
  node node_;
  node::impl& impl_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<session_impl> operator_;
  std::shared_ptr<session_impl> remote_;
  std::atomic<uint64_t> remote_seq_{0};
  caf::actor bridge_;
};

} // namespace

std::unique_ptr<backend> backend::make(node n) {
  return std::make_unique<backend_impl>(std::move(n));
}

} // namespace tether::gateway
