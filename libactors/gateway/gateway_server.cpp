// tether/gateway.hpp: the gateway behind the library's public API. Reads and checks
// the gateway's options, loads its credentials and TLS files, and runs `server`.

#include "tether/gateway.hpp"

#include <chrono>
#include <stdexcept>

#include <caf/actor_system_config.hpp>

#include "gateway/backend.hpp"
#include "gateway/credentials.hpp"
#include "gateway/gateway.hpp"
#include "gateway/gateway_options.hpp"
#include "gateway/log_limiter.hpp"
#include "gateway/tls_store.hpp"
#include "tether/option_table.hpp"

namespace tether {

void configure_gateway(caf::actor_system_config& cfg) {
  gateway::configure(cfg);
}

std::string options_markdown() {
  node_options node_defaults;
  gateway::gateway_options gateway_defaults;
  return options_markdown("tether", {node_option_table(node_defaults),
                                     gateway::gateway_option_table(gateway_defaults)});
}

struct gateway_server::impl {
  std::shared_ptr<gateway::tls_store> tls;
  std::unique_ptr<gateway::server> srv;
};

gateway_server::gateway_server(const caf::actor_system_config& cfg,
                               const node_options& opts)
  : impl_(std::make_unique<impl>()) {
  auto gw = gateway::read_gateway_options(cfg);
  if (auto err = gateway::check(gw); !err.empty())
    throw std::invalid_argument(err);
  auto credentials = std::make_shared<gateway::credential_store>(gw.tokens_file,
                                                                 opts.auth_token);
  if (gw.tls.enabled())
    impl_->tls = std::make_shared<gateway::tls_store>(gw.tls);
  // Before the I/O threads: libprotobuf logs about frames clients send.
  gateway::limit_protobuf_logging(gw.limits.client_log_burst,
                                  std::chrono::milliseconds(gw.limits.client_log_period_ms));
  impl_->srv = std::make_unique<gateway::server>(opts, gw.limits, std::move(credentials),
                                                 impl_->tls);
}

gateway_server::~gateway_server() = default;

uint16_t gateway_server::bind() {
  return impl_->srv->bind();
}

void gateway_server::handle_signals() {
  impl_->srv->handle_signals();
}

void gateway_server::serve(node n) {
  impl_->srv->serve(gateway::backend::make(std::move(n)));
  impl_->srv->start();
}

void gateway_server::wait() {
  impl_->srv->wait();
}

void gateway_server::stop() {
  impl_->srv->stop();
}

bool gateway_server::tls() const noexcept {
  return impl_->tls != nullptr;
}

std::string gateway_server::tls_certificate() const {
  return impl_->tls ? impl_->tls->describe() : std::string{};
}

} // namespace tether
