#include "gateway/backend.hpp"

#include <algorithm>
#include <atomic>

#include "tether/node.hpp"
#include "wire/codec.hpp"

namespace tether::gateway {

backend::~backend() = default;

namespace {

/// The node's public interfaces (tether/node.hpp, tether/admin.hpp) as the gateway
/// uses them.
class backend_impl : public backend {
public:
  explicit backend_impl(node n)
    : node_(std::move(n)),
      admin_(node_.admin()),
      remote_(node_.open_session("remote-write@" + node_.options().name, {})) {
  }

  ~backend_impl() override {
    remote_->close();
  }

  const node_options& options() const override {
    return node_.options();
  }

  std::shared_ptr<const rules::rule_set> rules() const override {
    return node_.rules();
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
    return admin_.ready();
  }

  std::shared_ptr<session_backend> open_session(std::string producer,
                                                window_sink on_window) override {
    return node_.open_session(std::move(producer), std::move(on_window));
  }

  void table(table_done done) override {
    admin_.table(std::move(done));
  }

  void read(std::string key, read_done done) override {
    admin_.read(std::move(key), std::move(done));
  }

  bool clustered() const override {
    return admin_.clustered();
  }

  void peers(peers_done done) override {
    admin_.peers(std::move(done));
  }

  void moves(moves_done done) override {
    admin_.moves(std::move(done));
  }

  void admin(admin_request req, admin_done done) override {
    admin_.admin(std::move(req), std::move(done));
  }

  void scrape(scrape_done done) override {
    admin_.scrape(std::move(done));
  }

  void read_local(std::string key, local_read_done done) override {
    admin_.read_local(std::move(key), std::move(done));
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

  std::vector<cluster_event> events_since(uint64_t after) const override {
    return admin_.events_since(after);
  }

private:
  node node_;
  node_admin admin_;
  std::shared_ptr<producer_session> remote_;
  std::atomic<uint64_t> remote_seq_{0};
};

} // namespace

std::unique_ptr<backend> backend::make(node n) {
  return std::make_unique<backend_impl>(std::move(n));
}

} // namespace tether::gateway
