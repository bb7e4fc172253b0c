#include "backend.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "node/node_impl.hpp"
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

/// Runs tasks and forwards window updates to the session's sink.
caf::behavior bridge_behavior(caf::event_based_actor* self, window_sink sink) {
  return {
    [self](bridge_task& t) { t.run(self); },
    [sink](window_atom, std::vector<series_view>& vs) {
      if (sink)
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
    : ingest_(std::move(ingest)), timeout_(timeout) {
    bridge_ = sys.spawn(bridge_behavior, std::move(sink));
  }

  ~session_impl() override {
    close();
  }

  void write(wire::keyed_batch batch, write_done done) override {
    post([ingest = ingest_, timeout = timeout_, batch = std::move(batch),
          done = std::move(done)](caf::event_based_actor* self) mutable {
      self->request(ingest, timeout, write_atom::value, std::move(batch))
        .then([done](write_ack& ack) { done({}, ack); },
              [done](caf::error& err) { done(status_of(err), {}); });
    });
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
          done = std::move(done)](caf::event_based_actor* self) mutable {
      self->request(ingest, timeout, subscribe_atom::value, std::move(keys),
                    caf::actor_cast<caf::actor>(self))
        .then([done](std::vector<series_view>& vs) { done({}, std::move(vs)); },
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
    bridge_ = impl_.sys.spawn(bridge_behavior, window_sink{});
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
