#include "gateway/gateway.hpp"

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "gateway/gateway_test_support.hpp"

using namespace std::chrono_literals;
namespace gw = tether::gateway;

namespace {

/// A node whose admin calls take `delay` to answer (on a thread of their own, as the
/// node's actors answer on theirs); everything else answers at once.
class slow_backend : public gw::testing::empty_backend {
public:
  slow_backend(tether::node_options opts, std::chrono::milliseconds delay)
    : empty_backend(std::move(opts)), delay_(delay) {
  }

  ~slow_backend() override {
    join();
  }

  /// Waits for the answering threads. Call before the server stops: a thread's
  /// callback holds the HTTP session, which must go while its I/O context lives.
  void join() {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& t : threads_)
      if (t.joinable())
        t.join();
  }

  bool clustered() const override {
    return true;
  }
  /// Many peers, late: an answer of megabytes that the socket cannot take at once.
  void peers(gw::peers_done done) override {
    std::lock_guard<std::mutex> guard{mtx_};
    threads_.emplace_back([done, d = delay_] {
      std::vector<gw::peer_state> xs(50000);
      for (size_t i = 0; i < xs.size(); ++i) {
        xs[i].name = "peer-" + std::to_string(i) + std::string(100, 'x');
        xs[i].gateway = "127.0.0.1:" + std::to_string(i);
      }
      std::this_thread::sleep_for(d);
      done({}, std::move(xs));
    });
  }
  void admin(gw::admin_request, gw::admin_done done) override {
    std::lock_guard<std::mutex> guard{mtx_};
    threads_.emplace_back([done, d = delay_] {
      std::this_thread::sleep_for(d); // the node at work, e.g. moving slices
      done({}, 7);
    });
  }

private:
  std::chrono::milliseconds delay_;
  std::mutex mtx_;
  std::vector<std::thread> threads_;
};

/// Sends `request` to 127.0.0.1:`port` and returns all the server sends until it
/// closes the connection or 20 s pass.
std::string exchange(uint16_t port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  timeval tv{20, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL)
          == static_cast<ssize_t>(request.size()));
  std::string out;
  char buf[4096];
  for (;;) {
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
      break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

/// Runs a gateway on a loopback port with `http-read-timeout-ms` = `timeout_ms` over
/// a backend that answers after `delay`, sends `request`, and returns what the
/// gateway sent back; the backend's threads are done and the server stopped.
std::string ask_slow_node(uint32_t timeout_ms, std::chrono::milliseconds delay,
                          const std::string& request) {
  tether::node_options opts;
  opts.name = "slow";
  opts.host = "127.0.0.1";
  opts.port = 0;
  gw::gateway_limits limits;
  limits.http_read_timeout_ms = timeout_ms;
  auto credentials = std::make_shared<gw::credential_store>("", "");
  gw::server srv{opts, limits, credentials};
  auto port = srv.bind();
  auto backend = std::make_unique<slow_backend>(opts, delay);
  auto* slow = backend.get();
  srv.serve(std::move(backend));
  std::thread runner{[&srv] { srv.run_until_signal(); }};
  auto answer = exchange(port, request);
  slow->join();
  srv.stop();
  runner.join();
  return answer;
}

} // namespace

TEST_CASE("an answer that takes longer than the HTTP read timeout reaches the client",
          "[gateway]") {
  auto started = std::chrono::steady_clock::now();
  // 1000 ms: the lowest read timeout the option allows.
  auto answer = ask_slow_node(1000, 1500ms,
                              "POST /v1/admin/rebalance HTTP/1.1\r\nHost: slow\r\n"
                              "Content-Length: 0\r\nConnection: close\r\n\r\n");
  auto took = std::chrono::steady_clock::now() - started;
  CAPTURE(answer);
  // The node took longer than the read timeout, and the client still got its answer.
  CHECK(took >= 1500ms);
  CHECK(answer.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(answer.find("\"moved\":7") != std::string::npos);
}

TEST_CASE("a late answer of megabytes is written whole", "[gateway]") {
  // 18 MB take the socket more than one send: before, the write inherited the
  // request's expired deadline and was cut off. 3 s to take them: enough for a
  // sanitizer build beside busy loops (it took 12 MB in 1 s there).
  auto answer = ask_slow_node(3000, 3500ms,
                              "GET /v1/nodes HTTP/1.1\r\nHost: slow\r\n"
                              "Connection: close\r\n\r\n");
  REQUIRE(answer.rfind("HTTP/1.1 200", 0) == 0);
  auto body = answer.find("\r\n\r\n");
  REQUIRE(body != std::string::npos);
  auto length_at = answer.find("Content-Length: ");
  REQUIRE(length_at != std::string::npos);
  auto length = std::stoull(answer.substr(length_at + 16));
  CHECK(length > (4u << 20));
  CHECK(answer.size() - body - 4 == length); // not cut off
  CHECK(answer.find("peer-49999") != std::string::npos);
}
