// Producer sessions of a gateway: an ingest actor for keyed batches and a bridge
// actor for reads, subscriptions and window updates.

#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "node/bridge.hpp"
#include "node/node_impl.hpp"
#include "outputs/window_order.hpp"
#include "routing/ingest.hpp"
#include "tether/node.hpp"
#include "wire/codec.hpp"
#include "wire/keyed_batch.hpp"

namespace tether {

producer_session::~producer_session() = default;

namespace {

using internal::status_of;

class session_impl : public producer_session {
public:
  session_impl(caf::actor_system& sys, routing::ingest_full_actor ingest,
               window_sink sink, std::chrono::milliseconds timeout)
    : ingest_(std::move(ingest)),
      // The ingest actor answers within its own request timeout (then UNAVAILABLE
      // naming the slice); this outer bound only catches an ingest actor that died.
      timeout_(2 * timeout + std::chrono::milliseconds(1000)) {
    bridge_ = internal::spawn_bridge(sys, std::move(sink), order_);
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
    internal::post(bridge_, [ingest = ingest_, timeout = timeout_, key = std::move(key),
                             done = std::move(done)](caf::event_based_actor* self) mutable {
      self->request(ingest, timeout, read_atom::value, std::move(key))
        .then([done](series_view& v) { done({}, std::move(v)); },
              [done](caf::error& err) { done(status_of(err), {}); });
    });
  }

  void subscribe(std::vector<std::string> keys, subscribe_done done) override {
    internal::post(bridge_, [ingest = ingest_, timeout = timeout_, keys = std::move(keys),
                             done = std::move(done),
                             order = order_](caf::event_based_actor* self) mutable {
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
  routing::ingest_full_actor ingest_;
  /// Used only inside the bridge actor.
  std::shared_ptr<outputs::window_order> order_ = std::make_shared<outputs::window_order>();
  caf::actor bridge_;
  std::chrono::milliseconds timeout_;
};

} // namespace

std::shared_ptr<producer_session> node::open_session(std::string producer_id,
                                                     window_sink on_window) const {
  return std::make_shared<session_impl>(
    impl_->sys, routing::spawn_ingest(impl_->sys, impl_->ingest, std::move(producer_id)),
    std::move(on_window), std::chrono::milliseconds(impl_->opts.request_timeout_ms));
}

} // namespace tether
