// A subscription's first update against the windows that reach the session around
// it: a real WebSocket client, a gateway on loopback, and a node whose session
// answers on cue.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include "gateway/gateway.hpp"
#include "gateway/gateway_test_support.hpp"

namespace gw = tether::gateway;
namespace json = boost::json;
using tether::series_view;

namespace {

constexpr const char* key = "sub_total";

series_view counter(double total, int64_t window_end_ms) {
  series_view v;
  v.key = key;
  v.found = true;
  v.kind = tether::kind::counter;
  v.total = total;
  v.count = 1;
  v.window.start_ms = window_end_ms - 1000;
  v.window.end_ms = window_end_ms;
  v.window.count = 1;
  v.window.total = total;
  return v;
}

/// A primary that closed window [29 s, 30 s) of the key at a running total of 533,
/// applied 7 more, and then read the key for a subscribe: the closed window reaches
/// the session before the state (the state waits for a quorum round), and so does
/// the window [30 s, 31 s), closed after the read at 545.
class racing_session : public gw::session_backend {
public:
  explicit racing_session(gw::window_sink sink) : sink_(std::move(sink)) {
  }
  void write(tether::wire::keyed_batch, tether::write_done done) override {
    done({tether::errc::unavailable, "not here"}, {});
  }
  void read(std::string, tether::read_done done) override {
    done({tether::errc::unavailable, "not here"}, {});
  }
  void subscribe(std::vector<std::string>, tether::subscribe_done done) override {
    sink_({counter(533, 30'000)});
    sink_({counter(545, 31'000)});
    done({}, {counter(540, 30'000)});
  }
  void close() override {
  }

private:
  gw::window_sink sink_;
};

class racing_node : public gw::testing::empty_backend {
public:
  using empty_backend::empty_backend;
  std::shared_ptr<gw::session_backend> open_session(std::string,
                                                    gw::window_sink sink) override {
    return std::make_shared<racing_session>(std::move(sink));
  }
};

/// Every (window end, total) of the key in the window updates a client gets within
/// `for_ms` of subscribing, in order.
std::vector<std::pair<int64_t, double>> subscribe_and_listen(uint16_t port, int for_ms) {
  namespace net = boost::asio;
  namespace websocket = boost::beast::websocket;
  net::io_context io;
  websocket::stream<net::ip::tcp::socket> ws{io};
  net::ip::tcp::resolver resolver{io};
  net::connect(ws.next_layer(), resolver.resolve("127.0.0.1", std::to_string(port)));
  ws.handshake("127.0.0.1", "/v1/stream");
  ws.text(true);
  ws.write(net::buffer(std::string{R"({"hello":{"producerId":"t","protocolVersion":1}})"}));
  boost::beast::flat_buffer buf;
  ws.read(buf); // welcome
  buf.clear();
  ws.write(net::buffer(std::string{R"({"subscribe":{"requestId":"1","keys":["sub_total"]}})"}));
  std::vector<std::pair<int64_t, double>> out;
  // Reads until `for_ms` have passed (the I/O context stops then).
  std::function<void()> next = [&] {
    ws.async_read(buf, [&](boost::beast::error_code ec, std::size_t) {
      if (ec)
        return;
      auto frame = json::parse(boost::beast::buffers_to_string(buf.data())).as_object();
      buf.clear();
      REQUIRE(frame.contains("windowUpdate"));
      auto& u = frame["windowUpdate"].as_object();
      for (auto& s : u["series"].as_array()) {
        auto& x = s.as_object();
        auto& w = x.at("window").as_object();
        // int64 fields are JSON strings (protobuf's JSON mapping).
        auto end = std::stoll(std::string(w.at("windowEndMs").as_string().c_str()));
        auto& t = x.at("total");
        out.emplace_back(end, t.is_double() ? t.as_double()
                                            : static_cast<double>(t.as_int64()));
      }
      next();
    });
  };
  next();
  io.run_for(std::chrono::milliseconds(for_ms));
  boost::beast::error_code ignored;
  ws.next_layer().close(ignored);
  return out;
}

} // namespace

TEST_CASE("no window update after a subscription's first one shows an older state",
          "[gateway][subscribe]") {
  auto opts = gw::testing::loopback_node("racing");
  gw::testing::running_gateway gateway{opts, gw::gateway_limits{},
                                       std::make_unique<racing_node>(opts)};
  // 300 ms: ten times the time the session gathers windows before sending them.
  auto seen = subscribe_and_listen(gateway.port(), 300);
  // The first update is the state read (540, with the window it covers); the window
  // it covers does not follow it, the later one does.
  std::vector<std::pair<int64_t, double>> expected{{30'000, 540}, {31'000, 545}};
  CHECK(seen == expected);
}
