// tetherd: one Tether node with its HTTP/WebSocket gateway.

#include <chrono>
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

namespace {

/// The options table of docs/operations.md, from the node's and the gateway's option
/// tables; tests/docs/options_table_test.py fails when the docs differ.
std::string options_markdown() {
  tether::node_options node_defaults;
  tether::gateway::gateway_options gateway_defaults;
  return tether::options_markdown("tether",
                                  {tether::node_option_table(node_defaults),
                                   tether::gateway::gateway_option_table(gateway_defaults)});
}

} // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg{argv[i]};
    if (arg == "--version") {
      std::cout << "tetherd " << TETHER_VERSION << std::endl;
      return 0;
    }
    if (arg == "--print-options-markdown") {
      std::cout << options_markdown() << std::flush;
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
  tether::node_options opts;
  tether::gateway::gateway_options gateway_opts;
  std::shared_ptr<tether::gateway::credential_store> credentials;
  std::shared_ptr<tether::gateway::tls_store> tls;
  try {
    opts = tether::read_node_options(cfg);
    gateway_opts = tether::gateway::read_gateway_options(cfg);
    for (auto err : {tether::check(opts), tether::gateway::check(gateway_opts)})
      if (!err.empty())
        throw std::invalid_argument(err);
    credentials = std::make_shared<tether::gateway::credential_store>(
      gateway_opts.tokens_file, opts.auth_token);
    if (gateway_opts.tls.enabled())
      tls = std::make_shared<tether::gateway::tls_store>(gateway_opts.tls);
  } catch (const std::invalid_argument& e) {
    std::cerr << "tetherd: " << e.what() << "\n";
    return 2;
  }
  tether::gateway::limit_protobuf_logging(
    gateway_opts.limits.client_log_burst,
    std::chrono::milliseconds(gateway_opts.limits.client_log_period_ms));
  caf::actor_system sys{cfg};
  tether::gateway::server srv{opts, gateway_opts.limits, credentials, tls};
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
            << opts.port << (tls ? " (TLS only)" : "") << std::endl;
  if (tls)
    std::cout << "tetherd: TLS certificate " << tls->describe() << std::endl;
  srv.run_until_signal();
  std::cout << "tetherd: stopping" << std::endl;
  srv.stop();
  n.shutdown();
  return 0;
}
