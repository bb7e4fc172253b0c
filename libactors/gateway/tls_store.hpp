#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "gateway/gateway_options.hpp"

namespace boost::asio::ssl {
class context;
}

namespace tether::gateway {

/// The gateway's TLS server context, made from the files of `gateway_tls` and
/// replaced as a whole when they are read again (SIGHUP). Every context speaks TLS 1.2
/// or 1.3 only, with forward-secret AEAD cipher suites for TLS 1.2, no renegotiation
/// and no compression; with a client CA it requires a client certificate that CA
/// signed. A connection takes the context in force when it is accepted and keeps it
/// (OpenSSL counts its references), so a reload changes only new connections.
/// Thread-safe.
class tls_store {
public:
  /// Loads the files; throws std::invalid_argument naming the option, the file and
  /// what is wrong with it (unreadable, not PEM, key and certificate do not belong
  /// together, certificate expired) when they do not make a context.
  explicit tls_store(gateway_tls files);
  ~tls_store();

  tls_store(const tls_store&) = delete;
  tls_store& operator=(const tls_store&) = delete;

  /// The context in force.
  std::shared_ptr<boost::asio::ssl::context> current() const;

  /// Reads the files again; on error keeps the context in force and returns why.
  std::string reload();

  /// Whether clients must present a certificate (`tls-client-ca` is set).
  bool client_certificates() const noexcept {
    return !files_.client_ca.empty();
  }

  /// The subject and expiry of the certificate in force, for the node's log.
  std::string describe() const;

private:
  const gateway_tls files_;
  mutable std::mutex mtx_;
  std::shared_ptr<boost::asio::ssl::context> ctx_;
  std::string description_;
};

} // namespace tether::gateway
