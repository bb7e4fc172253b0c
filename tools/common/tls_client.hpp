#pragma once

#include "common/result.hpp"

#include <memory>
#include <string>

#include <boost/system/error_code.hpp>

struct ssl_st;

namespace boost::asio::ssl {
class context;
}

namespace tether::tools {

/// What the tools' TLS connections trust and present (`--ca`, `--cert`, `--key`).
struct tls_client_options {
  /// CA certificate(s), PEM, that must have signed the server's certificate; empty:
  /// the system's trusted CAs.
  std::string ca_file;
  /// A client certificate (PEM) and its unencrypted key, for a node that requires
  /// one (`tether.tls-client-ca`); both or neither.
  std::string certificate;
  std::string key;
};

/// A TLS client context: TLS 1.2 or later, the server's certificate verified against
/// `opts.ca_file` (or the system's CAs), with the client certificate when given. A
/// failure names the file that does not load and why.
/// Thread safety: the context may be shared by connections on any thread.
result<std::shared_ptr<boost::asio::ssl::context>>
make_tls_client_context(const tls_client_options& opts);

/// Prepares the OpenSSL connection `ssl` of a context from `make_tls_client_context`
/// to talk to `host`: server name indication for a host name, and verification that
/// the server's certificate names `host` (a DNS name, or for an IP literal an IP
/// address subject alternative name). Returns an empty string, or why it cannot.
std::string expect_server_name(ssl_st* ssl, const std::string& host);

/// `ec` of a failed TLS handshake on `ssl`, made specific when it failed because
/// the server's certificate did not verify: the result names OpenSSL's reason
/// ("certificate verify failed: unable to get local issuer certificate",
/// "... hostname mismatch").
boost::system::error_code explain_handshake_error(boost::system::error_code ec,
                                                  ssl_st* ssl);

} // namespace tether::tools
