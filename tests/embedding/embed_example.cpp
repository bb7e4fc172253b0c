// Embedding Tether in a CAF application: the program docs/embedding.md walks through.
// It spawns a node into its own actor system, writes a batch as a producer, retries it,
// reads the aggregated series back, asks the node's operator interface for its own
// replica of a series, and serves the node over HTTP and WebSocket with the gateway
// (reading the series through it). Exits non-zero if anything is off.

#include <chrono>
#include <future>
#include <iostream>
#include <string>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <tether/gateway.hpp>
#include <tether/tether.hpp>

namespace {

/// One HTTP/1.1 GET on 127.0.0.1:port: the whole answer, headers and body.
std::string http_get(uint16_t port, const std::string& target) {
  namespace net = boost::asio;
  net::io_context io;
  net::ip::tcp::socket sock{io};
  sock.connect({net::ip::make_address("127.0.0.1"), port});
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    + "Connection: close\r\n\r\n";
  net::write(sock, net::buffer(req));
  std::string answer;
  boost::system::error_code ec; // eof once the node closed the connection
  net::read(sock, net::dynamic_buffer(answer), ec);
  return answer;
}

} // namespace

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  // 1. Tether's message types, error codes and tether.* options join the config.
  //    The gateway's options (limits, tokens file, TLS files) are optional: only an
  //    application that serves clients over HTTP and WebSocket declares them.
  caf::actor_system_config cfg;
  tether::configure(cfg);
  tether::configure_gateway(cfg);
  if (auto err = cfg.parse(argc, argv)) {
    std::cerr << "bad options: " << to_string(err) << "\n";
    return 2;
  }
  caf::actor_system sys{cfg};

  // 2. One call spawns a whole node: directory, router and shards. The gateway binds
  //    its port first (0: any free one), so that the node advertises the real port.
  auto opts = tether::read_node_options(cfg); // tether.* options, or defaults
  opts.port = 0;
  tether::gateway_server gateway{cfg, opts};
  opts.port = gateway.bind();
  auto node = tether::spawn_node(sys, opts);

  // 3. A producer handle is a typed actor: batches in, acknowledgements out.
  tether::ingest_actor producer = node.open_producer("checkout-service");
  std::vector<tether::sample> batch;
  for (const char* pod : {"pod-a", "pod-b", "pod-c"}) {
    tether::sample s;
    s.name = "orders_total";
    s.labels = {{"region", "eu"}, {"pod", pod}};
    s.kind = tether::kind::counter;
    s.value = 2; // a delta
    batch.push_back(s);
  }

  caf::scoped_actor self{sys};
  int failures = 0;
  auto write = [&](uint64_t seq) {
    self->request(producer, 5s, tether::write_atom::value, seq, batch)
      .receive(
        [&](const tether::write_ack& ack) {
          std::cout << "write " << ack.sequence << ": accepted " << ack.accepted
                    << (ack.duplicate ? " (duplicate)" : "") << "\n";
        },
        [&](const caf::error& err) {
          std::cerr << "write failed: " << tether::message_of(err) << "\n";
          ++failures;
        });
  };
  write(1);
  write(1); // a retry of the same sequence is acknowledged, not applied again

  // 4. Read one output series back: its location and its state.
  self->request(producer, 5s, tether::read_atom::value,
                std::string{"orders_total{pod=\"pod-b\",region=\"eu\"}"})
    .receive(
      [&](const tether::series_view& v) {
        std::cout << v.key << " on " << v.node << " slice " << v.slice << " epoch "
                  << v.epoch << ": total " << v.total << "\n";
        if (!v.found || v.total != 2)
          ++failures;
      },
      [&](const caf::error& err) {
        std::cerr << "read failed: " << tether::message_of(err) << "\n";
        ++failures;
      });

  // 5. The operator interface: what an admin endpoint of your own would call. Its
  //    callbacks run on the node's threads; here a promise carries the answer over.
  {
    tether::node_admin admin = node.admin();
    std::promise<tether::local_read> got;
    admin.read_local("orders_total{pod=\"pod-a\",region=\"eu\"}",
                     [&](tether::status st, tether::local_read r) {
                       if (!st)
                         std::cerr << "local read failed: " << st.message << "\n";
                       got.set_value(std::move(r));
                     });
    auto r = got.get_future().get();
    std::cout << "this node's replica: " << r.replica << ", total " << r.view.total
              << ", ready " << (admin.ready() ? "yes" : "no") << "\n";
    if (r.replica != "primary" || r.view.total != 2)
      ++failures;
  }

  // 6. The gateway serves the node to clients of docs/protocol.md: the WebSocket
  //    stream API, the HTTP operator API, remote write and /metrics. tetherd runs
  //    exactly this, then run_until_signal().
  gateway.serve(node);
  auto answer = http_get(opts.port, "/v1/series?key=orders_total%7Bpod%3D%22pod-c%22%2C"
                                    "region%3D%22eu%22%7D");
  std::cout << "GET /v1/series on port " << opts.port << ": "
            << answer.substr(0, answer.find("\r\n")) << "\n";
  if (answer.rfind("HTTP/1.1 200", 0) != 0 || answer.find("\"total\":2") == std::string::npos)
    ++failures;
  gateway.stop();
  gateway.wait(); // before the node goes: no request reaches a node shutting down

  node.shutdown();
  return failures == 0 ? 0 : 1;
}
