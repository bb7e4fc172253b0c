// tetherd: one Tether node with its HTTP/WebSocket gateway.

#include <iostream>
#include <optional>
#include <stdexcept>
#include <string_view>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "backend.hpp"
#include "gateway.hpp"
#include "gateway_options.hpp"
#include "log_limiter.hpp"
#include "tether/tether.hpp"

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view{argv[i]} == "--version") {
      std::cout << "tetherd " << TETHER_VERSION << std::endl;
      return 0;
    }
  }
  caf::actor_system_config cfg;
  tether::configure(cfg);
  tether::gateway::configure(cfg);
  if (auto err = cfg.parse(argc, argv)) {
    std::cerr << "tetherd: " << to_string(err) << "\n";
    return 2;
  }
  if (cfg.cli_helptext_printed)
    return 0;
  auto opts = tether::read_node_options(cfg);
  if (auto err = tether::check(opts); !err.empty()) {
    std::cerr << "tetherd: " << err << "\n";
    return 2;
  }
  auto gateway_limits = tether::gateway::read_gateway_limits(cfg);
  if (auto err = tether::gateway::check(gateway_limits); !err.empty()) {
    std::cerr << "tetherd: " << err << "\n";
    return 2;
  }
  std::shared_ptr<tether::gateway::credential_store> credentials;
  try {
    credentials = std::make_shared<tether::gateway::credential_store>(
      tether::gateway::read_tokens_file(cfg), opts.auth_token);
  } catch (const std::invalid_argument& e) {
    std::cerr << "tetherd: " << e.what() << "\n";
    return 2;
  }
  tether::gateway::limit_protobuf_logging();
  caf::actor_system sys{cfg};
  tether::gateway::server srv{opts, gateway_limits, credentials};
  try {
    opts.port = srv.bind();
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
  srv.serve(tether::gateway::backend::make(n));
  std::cout << "tetherd: node " << opts.name << " listening on " << opts.host << ":"
            << opts.port << std::endl;
  srv.run_until_signal();
  std::cout << "tetherd: stopping" << std::endl;
  srv.stop();
  n.shutdown();
  return 0;
}
