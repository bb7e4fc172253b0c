// tetherd: one Tether node with its HTTP/WebSocket gateway, through the library's
// public API (tether/tether.hpp, tether/gateway.hpp).

#include <iostream>
#include <optional>
#include <stdexcept>
#include <string_view>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "tether/gateway.hpp"
#include "tether/tether.hpp"

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg{argv[i]};
    if (arg == "--version") {
      std::cout << "tetherd " << TETHER_VERSION << std::endl;
      return 0;
    }
    if (arg == "--print-options-markdown") {
      // The options table of docs/operations.md; tests/docs/options_table_test.py
      // fails when the docs differ.
      std::cout << tether::options_markdown() << std::flush;
      return 0;
    }
  }
  caf::actor_system_config cfg;
  tether::configure(cfg);
  tether::configure_gateway(cfg);
  if (auto err = cfg.parse(argc, argv)) {
    std::cerr << "tetherd: " << to_string(err) << "\n";
    return 2;
  }
  if (cfg.cli_helptext_printed)
    return 0;
  tether::node_options opts;
  std::optional<tether::gateway_server> srv;
  try {
    opts = tether::read_node_options(cfg);
    if (auto err = tether::check(opts); !err.empty())
      throw std::invalid_argument(err);
    srv.emplace(cfg, opts);
    srv->handle_signals(); // SIGINT, SIGTERM: stop; SIGHUP: reload rules, tokens, TLS
  } catch (const std::invalid_argument& e) {
    std::cerr << "tetherd: " << e.what() << "\n";
    return 2;
  }
  caf::actor_system sys{cfg};
  try {
    opts.port = srv->bind();
  } catch (const std::exception& e) {
    std::cerr << "tetherd: cannot listen on " << opts.host << ":" << opts.port
              << ": " << e.what() << std::endl;
    return 1;
  }
  std::optional<tether::node> spawned;
  try {
    spawned.emplace(tether::spawn_node(sys, opts));
  } catch (const std::invalid_argument& e) {
    std::cerr << "tetherd: " << e.what() << std::endl;
    return 2;
  }
  auto& n = *spawned;
  srv->serve(n);
  std::cout << "tetherd: node " << opts.name << " listening on " << opts.host << ":"
            << opts.port << (srv->tls() ? " (TLS only)" : "") << std::endl;
  if (srv->tls())
    std::cout << "tetherd: TLS certificate " << srv->tls_certificate() << std::endl;
  srv->wait();
  std::cout << "tetherd: stopping" << std::endl;
  n.shutdown();
  srv.reset(); // its handles on the node's actors go before the actor system ends
  return 0;
}
