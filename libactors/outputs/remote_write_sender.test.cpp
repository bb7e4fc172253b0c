#include "outputs/remote_write_sender.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <catch2/catch.hpp>

#include "prometheus/remote_write.hpp"

using namespace tether;
using namespace tether::outputs;
using namespace std::chrono_literals;

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;

/// Upper bound of every wait in these tests; reached only when something is broken.
constexpr auto wait_limit = std::chrono::milliseconds{5000};

/// How the test server answers one request.
struct reply {
  unsigned status = 200;
  std::string body;
  /// Answer only once `test_server::release` is called.
  bool hold = false;
  /// Close the connection after answering, without announcing it in a header, as a
  /// receiver does when an idle keep-alive connection times out.
  bool close_after = false;
};

/// A request as the test server received it.
struct received {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;
  std::string body;
  /// Which accepted connection carried it, counting from 0.
  size_t connection = 0;
};

/// An HTTP/1.1 server on 127.0.0.1 and an ephemeral port, run by its own thread. It
/// records every request and answers request `i` (counting from 0 over all
/// connections) as `script(i)` says.
class test_server {
public:
  using script = std::function<reply(size_t index)>;

  explicit test_server(script answers = [](size_t) { return reply{}; })
    : acceptor_(io_, tcp::endpoint{net::ip::make_address("127.0.0.1"), 0}),
      script_(std::move(answers)) {
    do_accept();
    thread_ = std::thread{[this] { io_.run(); }};
  }

  ~test_server() {
    io_.stop();
    thread_.join();
    held_.clear();
  }

  uint16_t port() const {
    return acceptor_.local_endpoint().port();
  }

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port()) + "/api/v1/write";
  }

  /// Waits until at least `n` requests have arrived.
  bool wait_for_requests(size_t n) {
    std::unique_lock<std::mutex> guard{mutex_};
    return cv_.wait_for(guard, wait_limit, [&] { return requests_.size() >= n; });
  }

  std::vector<received> requests() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return requests_;
  }

  std::vector<std::string> bodies() const {
    std::vector<std::string> out;
    for (auto& r : requests())
      out.push_back(r.body);
    return out;
  }

  size_t connections() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return connections_;
  }

  /// Answers every held request, and from now on answers at once.
  void release() {
    net::post(io_, [this] {
      released_ = true;
      auto held = std::move(held_);
      for (auto& [s, r] : held)
        s->respond(r);
    });
  }

private:
  class session : public std::enable_shared_from_this<session> {
  public:
    session(tcp::socket socket, test_server& server, size_t id)
      : socket_(std::move(socket)), server_(server), id_(id) {
    }

    void do_read() {
      request_ = {};
      http::async_read(socket_, buffer_, request_,
                       [self = shared_from_this()](error_code ec, size_t) {
                         if (!ec)
                           self->on_read();
                       });
    }

    void respond(const reply& r) {
      response_.result(r.status);
      response_.version(11);
      response_.keep_alive(true);
      response_.body() = r.body;
      response_.prepare_payload();
      auto on_write = [self = shared_from_this(),
                       close_after = r.close_after](error_code ec, size_t) {
        if (ec)
          return;
        if (close_after) {
          self->socket_.shutdown(tcp::socket::shutdown_both, ec);
          self->socket_.close(ec);
          return;
        }
        self->do_read();
      };
      http::async_write(socket_, response_, std::move(on_write));
    }

  private:
    void on_read() {
      auto r = server_.record(request_, id_);
      if (r.hold && !server_.released_) {
        server_.held_.emplace_back(shared_from_this(), r);
        return;
      }
      respond(r);
    }

    tcp::socket socket_;
    test_server& server_;
    size_t id_;
    beast::flat_buffer buffer_;
    http::request<http::string_body> request_;
    http::response<http::string_body> response_;
  };

  void do_accept() {
    acceptor_.async_accept([this](error_code ec, tcp::socket socket) {
      if (ec)
        return;
      size_t id;
      {
        std::lock_guard<std::mutex> guard{mutex_};
        id = connections_++;
      }
      std::make_shared<session>(std::move(socket), *this, id)->do_read();
      do_accept();
    });
  }

  reply record(const http::request<http::string_body>& req, size_t connection) {
    received r;
    r.method = std::string{req.method_string()};
    r.target = std::string{req.target()};
    for (auto& field : req)
      r.headers[std::string{field.name_string()}] = std::string{field.value()};
    r.body = req.body();
    r.connection = connection;
    size_t index;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      index = requests_.size();
      requests_.push_back(std::move(r));
    }
    cv_.notify_all();
    return script_(index);
  }

  net::io_context io_;
  tcp::acceptor acceptor_;
  script script_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<received> requests_;
  size_t connections_ = 0;
  // Used by the server thread only.
  bool released_ = false;
  std::vector<std::pair<std::shared_ptr<session>, reply>> held_;
  std::thread thread_;
};

/// Options for tests: the given endpoint, short backoff, fixed jitter seed.
remote_write_sender_options test_options(std::string endpoint) {
  remote_write_sender_options opts;
  opts.endpoint = std::move(endpoint);
  opts.min_backoff = 1ms;
  opts.max_backoff = 10ms;
  opts.request_timeout = wait_limit;
  opts.jitter_seed = 42;
  return opts;
}

std::unique_ptr<remote_write_sender> make_sender(remote_write_sender_options opts) {
  std::string error;
  auto sender = remote_write_sender::make(std::move(opts), error);
  INFO(error);
  REQUIRE(sender != nullptr);
  return sender;
}

/// Every batch is accounted for exactly once.
void check_balance(const remote_write_sender_stats& st) {
  CHECK(st.enqueued
        == st.sent + st.dropped_queue_full + st.dropped_shutdown
             + st.failed_after_retries + st.rejected_4xx + st.queue_depth
             + st.in_flight);
}

/// A port on 127.0.0.1 where nothing listens (bound once, then released).
uint16_t unused_port() {
  net::io_context io;
  tcp::acceptor acceptor{io, tcp::endpoint{net::ip::make_address("127.0.0.1"), 0}};
  return acceptor.local_endpoint().port();
}

/// A remote-write body with one sample of `up{job="<job>"}`.
std::string encoded_body(const std::string& job) {
  prom::label labels[] = {{"job", job}};
  prom::sample samples[] = {{1.0, 1000}};
  prom::series_view series[] = {{"up", labels, samples}};
  prom::write_encoder encoder;
  std::string body;
  auto result = prom::encode_write_request(series, {}, encoder, body);
  REQUIRE(result.ok());
  return body;
}

} // namespace

TEST_CASE("batches arrive in order, with the remote-write headers, on one connection") {
  test_server server;
  auto opts = test_options(server.url());
  opts.user_agent = "tether-test/1.2";
  auto sender = make_sender(opts);
  std::vector<std::string> bodies;
  for (auto job : {"a", "b", "c"})
    bodies.push_back(encoded_body(job));
  for (auto& b : bodies)
    CHECK(sender->enqueue(b));
  REQUIRE(sender->start());
  REQUIRE(sender->flush(wait_limit));
  auto requests = server.requests();
  REQUIRE(requests.size() == 3);
  prom::write_decoder decoder;
  const char* jobs[] = {"a", "b", "c"};
  for (size_t i = 0; i < requests.size(); ++i) {
    auto& r = requests[i];
    CHECK(r.method == "POST");
    CHECK(r.target == "/api/v1/write");
    CHECK(r.body == bodies[i]);
    CHECK(r.connection == 0);
    CHECK(r.headers["Content-Encoding"] == "snappy");
    CHECK(r.headers["Content-Type"] == "application/x-protobuf");
    CHECK(r.headers["X-Prometheus-Remote-Write-Version"] == "0.1.0");
    CHECK(r.headers["User-Agent"] == "tether-test/1.2");
    CHECK(r.headers["Host"] == "127.0.0.1:" + std::to_string(server.port()));
    CHECK(r.headers["Content-Length"] == std::to_string(bodies[i].size()));
    auto decoded = prom::decode_write_request(r.body, decoder);
    REQUIRE(decoded.ok());
    REQUIRE(decoded.request->series.size() == 1);
    auto& s = decoded.request->series[0];
    CHECK(s.name == "up");
    REQUIRE(s.labels.size() == 1);
    CHECK(s.labels[0].value == jobs[i]);
  }
  CHECK(server.connections() == 1);
  auto st = sender->stats();
  CHECK(st.enqueued == 3);
  CHECK(st.sent == 3);
  CHECK(st.retries == 0);
  CHECK(st.queue_depth == 0);
  CHECK(st.last_error.empty());
  check_balance(st);
}

TEST_CASE("5xx and 429 answers are retried until a 2xx") {
  test_server server{[](size_t i) {
    switch (i) {
      case 0:
        return reply{500, "boom"};
      case 1:
        return reply{429, "slow down"};
      default:
        return reply{};
    }
  }};
  auto sender = make_sender(test_options(server.url()));
  REQUIRE(sender->start());
  CHECK(sender->enqueue("first"));
  CHECK(sender->enqueue("second"));
  REQUIRE(sender->flush(wait_limit));
  CHECK(server.bodies()
        == std::vector<std::string>{"first", "first", "first", "second"});
  auto st = sender->stats();
  CHECK(st.sent == 2);
  CHECK(st.retries == 2);
  CHECK(st.failed_after_retries == 0);
  CHECK(st.rejected_4xx == 0);
  CHECK(st.last_error == "HTTP 429: slow down");
  check_balance(st);
}

TEST_CASE("a batch answered with 5xx on every attempt fails after max_retries") {
  test_server server{[](size_t) { return reply{503, "unavailable"}; }};
  auto opts = test_options(server.url());
  opts.max_retries = 2;
  auto sender = make_sender(opts);
  REQUIRE(sender->start());
  CHECK(sender->enqueue("doomed"));
  REQUIRE(sender->flush(wait_limit));
  CHECK(server.bodies() == std::vector<std::string>(3, "doomed"));
  auto st = sender->stats();
  CHECK(st.sent == 0);
  CHECK(st.retries == 2);
  CHECK(st.failed_after_retries == 1);
  CHECK(st.last_error == "HTTP 503: unavailable");
  check_balance(st);
}

TEST_CASE("a 4xx answer is not retried") {
  test_server server{[](size_t i) {
    return i == 0 ? reply{400, "out of order sample"} : reply{};
  }};
  auto sender = make_sender(test_options(server.url()));
  REQUIRE(sender->start());
  CHECK(sender->enqueue("bad"));
  CHECK(sender->enqueue("good"));
  REQUIRE(sender->flush(wait_limit));
  CHECK(server.bodies() == std::vector<std::string>{"bad", "good"});
  auto st = sender->stats();
  CHECK(st.rejected_4xx == 1);
  CHECK(st.sent == 1);
  CHECK(st.retries == 0);
  CHECK(st.last_error == "HTTP 400: out of order sample");
  check_balance(st);
}

TEST_CASE("a full queue drops its oldest batch") {
  // The first request is held, so the sender is stuck with it in flight while the
  // queue fills up behind it.
  test_server server{[](size_t i) {
    reply r;
    r.hold = i == 0;
    return r;
  }};
  auto opts = test_options(server.url());
  opts.max_queue = 3;
  auto sender = make_sender(opts);
  REQUIRE(sender->start());
  CHECK(sender->enqueue("b0"));
  REQUIRE(server.wait_for_requests(1));
  CHECK(sender->enqueue("b1"));
  CHECK(sender->enqueue("b2"));
  CHECK(sender->enqueue("b3"));
  CHECK_FALSE(sender->enqueue("b4")); // drops b1
  CHECK_FALSE(sender->enqueue("b5")); // drops b2
  auto st = sender->stats();
  CHECK(st.enqueued == 6);
  CHECK(st.dropped_queue_full == 2);
  CHECK(st.queue_depth == 3);
  CHECK(st.in_flight == 1);
  check_balance(st);
  server.release();
  REQUIRE(sender->flush(wait_limit));
  CHECK(server.bodies() == std::vector<std::string>{"b0", "b3", "b4", "b5"});
  st = sender->stats();
  CHECK(st.sent == 4);
  CHECK(st.dropped_queue_full == 2);
  CHECK(st.queue_depth == 0);
  CHECK(st.in_flight == 0);
  check_balance(st);
}

TEST_CASE("with nothing listening, batches fail after their retries") {
  auto opts = test_options("http://127.0.0.1:" + std::to_string(unused_port()) + "/w");
  opts.max_retries = 3;
  auto sender = make_sender(opts);
  REQUIRE(sender->start());
  CHECK(sender->enqueue("x"));
  CHECK(sender->enqueue("y"));
  REQUIRE(sender->flush(wait_limit));
  auto st = sender->stats();
  CHECK(st.failed_after_retries == 2);
  CHECK(st.retries == 6);
  CHECK(st.sent == 0);
  CHECK_THAT(st.last_error, Catch::StartsWith("connecting to 127.0.0.1:"));
  check_balance(st);
}

TEST_CASE("a response slower than request_timeout is retried on a new connection") {
  test_server server{[](size_t i) {
    reply r;
    r.hold = i == 0; // never answered
    return r;
  }};
  auto opts = test_options(server.url());
  opts.request_timeout = 250ms;
  auto sender = make_sender(opts);
  REQUIRE(sender->start());
  CHECK(sender->enqueue("slow"));
  REQUIRE(sender->flush(wait_limit));
  auto st = sender->stats();
  CHECK(st.sent == 1);
  // On a machine too busy to answer within the timeout, later attempts time out as
  // well; each one is a retry on a connection of its own.
  CHECK(st.retries >= 1);
  CHECK(server.bodies() == std::vector<std::string>(st.retries + 1, "slow"));
  CHECK(server.connections() == st.retries + 1);
  CHECK(st.last_error == "reading the response: timed out after 250 ms");
  check_balance(st);
}

TEST_CASE("a kept-alive connection the receiver closed is reopened without a retry") {
  test_server server{[](size_t) {
    reply r;
    r.close_after = true;
    return r;
  }};
  auto sender = make_sender(test_options(server.url()));
  REQUIRE(sender->start());
  for (auto b : {"p", "q", "r"}) {
    CHECK(sender->enqueue(b));
    REQUIRE(sender->flush(wait_limit));
  }
  CHECK(server.bodies() == std::vector<std::string>{"p", "q", "r"});
  CHECK(server.connections() == 3);
  auto st = sender->stats();
  CHECK(st.sent == 3);
  CHECK(st.retries == 0);
  check_balance(st);
}

TEST_CASE("a response body over the limit ends the connection, its status counts") {
  test_server server{[](size_t i) {
    return i == 0 ? reply{503, std::string(4096, 'x')} : reply{};
  }};
  auto opts = test_options(server.url());
  opts.max_response_bytes = 1024;
  auto sender = make_sender(opts);
  REQUIRE(sender->start());
  CHECK(sender->enqueue("big answer"));
  REQUIRE(sender->flush(wait_limit));
  CHECK(server.bodies() == std::vector<std::string>(2, "big answer"));
  CHECK(server.connections() == 2);
  auto st = sender->stats();
  CHECK(st.sent == 1);
  CHECK(st.retries == 1);
  CHECK_THAT(st.last_error, Catch::StartsWith("HTTP 503"));
  CHECK_THAT(st.last_error, Catch::Contains("body limit"));
  check_balance(st);
}

TEST_CASE("enqueue from several threads keeps each producer's order") {
  test_server server;
  auto sender = make_sender(test_options(server.url()));
  REQUIRE(sender->start());
  constexpr int producers = 4;
  constexpr int per_producer = 50;
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p)
    threads.emplace_back([&sender, p] {
      for (int i = 0; i < per_producer; ++i)
        sender->enqueue(std::to_string(p) + ":" + std::to_string(i));
    });
  for (auto& t : threads)
    t.join();
  REQUIRE(sender->flush(wait_limit));
  auto bodies = server.bodies();
  REQUIRE(bodies.size() == size_t{producers * per_producer});
  std::vector<int> next(producers, 0);
  for (auto& b : bodies) {
    auto colon = b.find(':');
    auto p = std::stoi(b.substr(0, colon));
    CHECK(std::stoi(b.substr(colon + 1)) == next[p]++);
  }
  auto st = sender->stats();
  CHECK(st.sent == size_t{producers * per_producer});
  check_balance(st);
}

TEST_CASE("stop() sends what is queued") {
  test_server server;
  auto opts = test_options(server.url());
  opts.drain_timeout = wait_limit;
  auto sender = make_sender(opts);
  for (auto b : {"1", "2", "3", "4", "5"})
    CHECK(sender->enqueue(b));
  REQUIRE(sender->start());
  sender->stop();
  CHECK(server.bodies() == std::vector<std::string>{"1", "2", "3", "4", "5"});
  auto st = sender->stats();
  CHECK(st.sent == 5);
  CHECK(st.dropped_shutdown == 0);
  check_balance(st);
  // Stopped senders drop what they are given and cannot be restarted.
  CHECK_FALSE(sender->enqueue("late"));
  CHECK_FALSE(sender->start());
  sender->stop();
  st = sender->stats();
  CHECK(st.enqueued == 6);
  CHECK(st.dropped_shutdown == 1);
  check_balance(st);
}

TEST_CASE("stop() gives up on a backlog when the drain time runs out") {
  // The receiver never answers; the request timeout is far beyond the drain time, so
  // only the drain bound can end stop().
  test_server server{[](size_t) {
    reply r;
    r.hold = true;
    return r;
  }};
  auto opts = test_options(server.url());
  opts.request_timeout = 20s;
  opts.drain_timeout = 100ms;
  auto sender = make_sender(opts);
  REQUIRE(sender->start());
  for (auto b : {"1", "2", "3", "4", "5"})
    CHECK(sender->enqueue(b));
  REQUIRE(server.wait_for_requests(1));
  auto begin = std::chrono::steady_clock::now();
  sender->stop();
  // A generous bound that only a stop() waiting for the request timeout misses.
  bool bounded = std::chrono::steady_clock::now() - begin < 10s;
  CHECK(bounded);
  CHECK(server.bodies() == std::vector<std::string>{"1"});
  auto st = sender->stats();
  CHECK(st.sent == 0);
  CHECK(st.dropped_shutdown == 5);
  CHECK(st.queue_depth == 0);
  CHECK(st.in_flight == 0);
  CHECK(st.last_error
        == "reading the response: abandoned, the drain time of stop() ran out");
  check_balance(st);
}

TEST_CASE("stop() gives up on backoff when the drain time runs out") {
  test_server server{[](size_t) { return reply{503, "busy"}; }};
  auto opts = test_options(server.url());
  opts.min_backoff = 20s;
  opts.max_backoff = 20s;
  opts.drain_timeout = 100ms;
  opts.max_retries = 1000; // so that only stop() ends the retries
  auto sender = make_sender(opts);
  REQUIRE(sender->start());
  CHECK(sender->enqueue("retry-me"));
  REQUIRE(server.wait_for_requests(1));
  auto begin = std::chrono::steady_clock::now();
  sender->stop();
  // Only a stop() that waits out the backoff misses this bound.
  bool bounded = std::chrono::steady_clock::now() - begin < 10s;
  CHECK(bounded);
  auto st = sender->stats();
  CHECK(st.dropped_shutdown == 1);
  CHECK(st.sent == 0);
  check_balance(st);
}

TEST_CASE("parse_http_endpoint") {
  http_endpoint ep;
  std::string error;
  SECTION("accepts http URLs") {
    REQUIRE(parse_http_endpoint("http://localhost:9090/api/v1/write", ep, error));
    CHECK(ep.host == "localhost");
    CHECK(ep.port == 9090);
    CHECK(ep.target == "/api/v1/write");
    CHECK(ep.host_header() == "localhost:9090");
    REQUIRE(parse_http_endpoint("HTTP://10.1.2.3/push?tenant=a", ep, error));
    CHECK(ep.host == "10.1.2.3");
    CHECK(ep.port == 80);
    CHECK(ep.target == "/push?tenant=a");
    REQUIRE(parse_http_endpoint("http://[::1]:8080", ep, error));
    CHECK(ep.host == "::1");
    CHECK(ep.port == 8080);
    CHECK(ep.target == "/");
    CHECK(ep.host_header() == "[::1]:8080");
    REQUIRE(parse_http_endpoint("http://metrics.example_1.net:1?x", ep, error));
    CHECK(ep.target == "/?x");
  }
  SECTION("refuses anything else and leaves the output alone") {
    ep.host = "untouched";
    for (auto url : {"", "localhost:9090/write", "https://host:443/write",
                     "ftp://host/x", "http://", "http:///write", "http://:9090/write",
                     "http://host:/write", "http://host:0/write", "http://host:65536/",
                     "http://host:12a/", "http://host:123456/", "http://user@host:1/",
                     "http://host:1/write#frag", "http://ho st:1/", "http://host:1/a b",
                     "http://host:1/\n", "http://::1:80/", "http://[::1/",
                     "http://[nothex]:1/", "http://[::1]x/", "http://h\xc3\xa9:1/"}) {
      INFO(url);
      error.clear();
      CHECK_FALSE(parse_http_endpoint(url, ep, error));
      CHECK_FALSE(error.empty());
    }
    CHECK(ep.host == "untouched");
    CHECK_FALSE(parse_http_endpoint("https://h:1/", ep, error));
    CHECK_THAT(error, Catch::Contains("only http"));
  }
}

TEST_CASE("make() refuses out-of-bounds options") {
  std::string error;
  auto base = test_options("http://127.0.0.1:9/w");
  REQUIRE(remote_write_sender::make(base, error) != nullptr);
  auto refused = [&](auto change, const char* what) {
    auto opts = base;
    change(opts);
    error.clear();
    auto sender = remote_write_sender::make(opts, error);
    INFO(what);
    CHECK(sender == nullptr);
    CHECK_THAT(error, Catch::Contains(what));
  };
  using opts_t = remote_write_sender_options;
  refused([](opts_t& o) { o.endpoint = "https://h/w"; }, "only http");
  refused([](opts_t& o) { o.max_queue = 0; }, "max_queue");
  refused([](opts_t& o) { o.max_retries = 1001; }, "max_retries");
  refused([](opts_t& o) { o.min_backoff = 0ms; }, "min_backoff");
  refused(
    [](opts_t& o) {
      o.min_backoff = 50ms;
      o.max_backoff = 10ms;
    },
    "max_backoff");
  refused([](opts_t& o) { o.request_timeout = 0ms; }, "request_timeout");
  refused([](opts_t& o) { o.drain_timeout = -1ms; }, "drain_timeout");
  refused([](opts_t& o) { o.max_response_bytes = 10; }, "max_response_bytes");
  refused([](opts_t& o) { o.user_agent = ""; }, "user_agent");
  refused([](opts_t& o) { o.user_agent = "a\r\nX-Evil: 1"; }, "user_agent");
}

TEST_CASE("default options are the documented ones") {
  remote_write_sender_options opts;
  CHECK(opts.max_queue == 256);
  CHECK(opts.max_retries == 10);
  CHECK(opts.min_backoff == 100ms);
  CHECK(opts.max_backoff == 10s);
  CHECK(opts.request_timeout == 10s);
  CHECK(opts.drain_timeout == 2s);
  CHECK(opts.user_agent == "tether/0.1");
}
