#pragma once

// Test helpers shared by the gateway's component tests: a node that answers every
// call at once with nothing (tests override what they exercise), and a gateway on
// a loopback port run on a thread of its own.

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gateway/gateway.hpp"

namespace tether::gateway::testing {

/// A standalone node that holds nothing: reads are refused, tables and peers are
/// empty, sessions cannot be opened.
class empty_backend : public backend {
public:
  explicit empty_backend(node_options opts) : opts_(std::move(opts)) {
  }

  const node_options& options() const override {
    return opts_;
  }
  std::shared_ptr<const rules::rule_set> rules() const override {
    return nullptr;
  }
  std::string reload_rules() override {
    return {};
  }
  node_stats stats() const override {
    return {};
  }
  void count_batch(errc) override {
  }
  bool ready() const override {
    return true;
  }
  std::shared_ptr<session_backend> open_session(std::string, window_sink) override {
    return nullptr;
  }
  void table(table_done done) override {
    done({}, {});
  }
  bool clustered() const override {
    return false;
  }
  void peers(peers_done done) override {
    done({}, {});
  }
  void moves(moves_done done) override {
    done({}, {});
  }
  void admin(admin_request, admin_done done) override {
    done({errc::unavailable, "not here"}, 0);
  }
  void read(std::string, read_done done) override {
    done({errc::unavailable, "not here"}, {});
  }
  void read_local(std::string, local_read_done done) override {
    done({errc::unavailable, "not here"}, {});
  }
  void scrape(scrape_done done) override {
    done({}, {}, {});
  }
  void remote_write(wire::keyed_batch, write_done done) override {
    done({errc::unavailable, "not here"}, {});
  }
  uint64_t next_remote_sequence() override {
    return 1;
  }
  std::vector<cluster_event> events_since(uint64_t) const override {
    return {};
  }

private:
  node_options opts_;
};

/// Options of a node named `name` whose gateway listens on a free loopback port.
inline node_options loopback_node(std::string name) {
  node_options opts;
  opts.name = std::move(name);
  opts.host = "127.0.0.1";
  opts.port = 0;
  return opts;
}

/// A gateway serving `backend` on a loopback port, on a thread of its own, until
/// it goes out of scope.
class running_gateway {
public:
  running_gateway(const node_options& opts, gateway_limits limits,
                  std::unique_ptr<backend> node)
    : srv_(opts, limits, std::make_shared<credential_store>("", "")) {
    port_ = srv_.bind();
    srv_.serve(std::move(node));
    runner_ = std::thread{[this] { srv_.run_until_signal(); }};
  }

  ~running_gateway() {
    srv_.stop();
    runner_.join();
  }

  running_gateway(const running_gateway&) = delete;
  running_gateway& operator=(const running_gateway&) = delete;

  uint16_t port() const {
    return port_;
  }

private:
  server srv_;
  uint16_t port_ = 0;
  std::thread runner_;
};

} // namespace tether::gateway::testing
