#include "common/tls_client.hpp"

#include <fstream>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

namespace tether::tools {

namespace ssl = boost::asio::ssl;

namespace {

std::string openssl_reason() {
  std::string out;
  while (auto e = ERR_get_error()) {
    const char* r = ERR_reason_error_string(e);
    if (r != nullptr && out.find(r) == std::string::npos)
      out += out.empty() ? std::string{r} : std::string{"; "} + r;
  }
  return out.empty() ? std::string{"unknown reason"} : out;
}

/// Reasons of failed certificate verifications, by X509_V_ERR_* value.
class verify_category : public boost::system::error_category {
public:
  const char* name() const noexcept override {
    return "tls-verify";
  }

  std::string message(int value) const override {
    return std::string{"certificate verify failed: "}
           + X509_verify_cert_error_string(value);
  }
};

const verify_category& verify_errors() {
  static const verify_category instance;
  return instance;
}

} // namespace

result<std::shared_ptr<ssl::context>>
make_tls_client_context(const tls_client_options& opts) {
  for (auto [what, path] : {std::pair{"--ca", &opts.ca_file},
                            std::pair{"--cert", &opts.certificate},
                            std::pair{"--key", &opts.key}})
    if (!path->empty() && !std::ifstream{*path})
      return fail(std::string{"cannot read "} + what + " " + *path);
  if (opts.certificate.empty() != opts.key.empty())
    return fail("--cert and --key go together");
  ERR_clear_error();
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  auto* h = ctx->native_handle();
  SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION);
  SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (opts.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(h) != 1)
      return fail("cannot load the system's trusted CAs: " + openssl_reason());
  } else if (SSL_CTX_load_verify_locations(h, opts.ca_file.c_str(), nullptr) != 1) {
    return fail("--ca " + opts.ca_file + " holds no PEM CA certificate: "
                + openssl_reason());
  }
  if (!opts.certificate.empty()) {
    if (SSL_CTX_use_certificate_chain_file(h, opts.certificate.c_str()) != 1)
      return fail("--cert " + opts.certificate + " is not a PEM certificate: "
                  + openssl_reason());
    if (SSL_CTX_use_PrivateKey_file(h, opts.key.c_str(), SSL_FILETYPE_PEM) != 1
        || SSL_CTX_check_private_key(h) != 1)
      return fail("--key " + opts.key + " is not the unencrypted PEM key of --cert "
                  + opts.certificate + ": " + openssl_reason());
  }
  SSL_CTX_set_verify(h, SSL_VERIFY_PEER, nullptr);
  ERR_clear_error();
  return ctx;
}

std::string expect_server_name(ssl_st* ssl, const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  auto* param = SSL_get0_param(ssl);
  if (!ec) { // an IP literal: no SNI (RFC 6066), an IP address SAN must match
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1)
      return "cannot verify the server's certificate for " + host;
    return {};
  }
  if (SSL_set_tlsext_host_name(ssl, host.c_str()) != 1)
    return "cannot send the server name " + host + ": " + openssl_reason();
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) != 1)
    return "cannot verify the server's certificate for " + host;
  return {};
}

boost::system::error_code explain_handshake_error(boost::system::error_code ec,
                                                  ssl_st* ssl) {
  if (!ec || ssl == nullptr)
    return ec;
  auto verdict = SSL_get_verify_result(ssl);
  if (verdict != X509_V_OK)
    return {static_cast<int>(verdict), verify_errors()};
  return ec;
}

} // namespace tether::tools
