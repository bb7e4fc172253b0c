#include "gateway/tls_store.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <boost/asio/ssl/context.hpp>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509err.h>

#include "node/openssl_reason.hpp"

namespace tether::gateway {

namespace ssl = boost::asio::ssl;

namespace {

/// TLS 1.2 cipher suites: ephemeral key exchange and AEAD only. TLS 1.3 keeps
/// OpenSSL's own list (all of its suites are of that kind).
constexpr const char* tls12_ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:"
                                      "ECDHE-RSA-AES128-GCM-SHA256:"
                                      "ECDHE-ECDSA-AES256-GCM-SHA384:"
                                      "ECDHE-RSA-AES256-GCM-SHA384:"
                                      "ECDHE-ECDSA-CHACHA20-POLY1305:"
                                      "ECDHE-RSA-CHACHA20-POLY1305";

/// Resumed sessions must belong to this server (required with client certificates).
constexpr unsigned char session_context[] = "tetherd-gateway";

using internal::openssl_reason;

/// Empty when `path` can be opened for reading, else why not, naming `option`.
std::string unreadable(const char* option, const std::string& path) {
  std::ifstream f{path};
  if (f)
    return {};
  return std::string{"tether."} + option + ": cannot read " + path + ": "
         + std::strerror(errno);
}

std::string time_text(const ASN1_TIME* t) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio{BIO_new(BIO_s_mem()), &BIO_free};
  if (!bio || ASN1_TIME_print(bio.get(), t) != 1)
    return "?";
  char* data = nullptr;
  auto len = BIO_get_mem_data(bio.get(), &data);
  return std::string{data, static_cast<size_t>(len > 0 ? len : 0)};
}

std::string subject_text(X509* cert) {
  char buf[256];
  if (X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof(buf)) == nullptr)
    return "?";
  return buf;
}

/// A server context from `files`, or nullptr and `error` naming the option, the file
/// and what is wrong. `description` gets the certificate's subject and expiry.
std::shared_ptr<ssl::context> make_context(const gateway_tls& files, std::string& error,
                                           std::string& description) {
  for (auto [option, path] : {std::pair{"tls-certificate", &files.certificate},
                              std::pair{"tls-key", &files.key},
                              std::pair{"tls-client-ca", &files.client_ca}})
    if (!path->empty())
      if (error = unreadable(option, *path); !error.empty())
        return nullptr;
  ERR_clear_error();
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  auto* h = ctx->native_handle();
  SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION);
  SSL_CTX_set_options(h, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION
                           | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(h, tls12_ciphers) != 1) {
    error = "cannot set the TLS 1.2 cipher suites: " + openssl_reason();
    return nullptr;
  }
  if (SSL_CTX_use_certificate_chain_file(h, files.certificate.c_str()) != 1) {
    error = "tether.tls-certificate " + files.certificate
            + " is not a PEM certificate (chain): " + openssl_reason();
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(h, files.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
      error = "tether.tls-key " + files.key + " is not an unencrypted PEM private key: "
              + openssl_reason();
      return nullptr;
    }
    ERR_clear_error();
    error = "tether.tls-key " + files.key + " does not belong to tether.tls-certificate "
            + files.certificate;
    return nullptr;
  }
  if (SSL_CTX_check_private_key(h) != 1) {
    error = "tether.tls-key " + files.key + " does not belong to tether.tls-certificate "
            + files.certificate;
    return nullptr;
  }
  auto* cert = SSL_CTX_get0_certificate(h);
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
    error = "tether.tls-certificate " + files.certificate + " expired on "
            + time_text(X509_get0_notAfter(cert));
    return nullptr;
  }
  description = subject_text(cert) + ", valid until " + time_text(X509_get0_notAfter(cert));
  SSL_CTX_set_session_id_context(h, session_context, sizeof(session_context) - 1);
  if (!files.client_ca.empty()) {
    if (SSL_CTX_load_verify_locations(h, files.client_ca.c_str(), nullptr) != 1) {
      error = "tether.tls-client-ca " + files.client_ca
              + " holds no PEM CA certificate: " + openssl_reason();
      return nullptr;
    }
    // The CertificateRequest names the accepted CAs, so that a client holding
    // several certificates picks the right one.
    if (auto* names = SSL_load_client_CA_file(files.client_ca.c_str()))
      SSL_CTX_set_client_CA_list(h, names);
    SSL_CTX_set_verify(h, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    description += "; client certificates of " + files.client_ca + " required";
  }
  ERR_clear_error();
  return ctx;
}

} // namespace

tls_store::tls_store(gateway_tls files) : files_(std::move(files)) {
  std::string error;
  ctx_ = make_context(files_, error, description_);
  if (!ctx_)
    throw std::invalid_argument(error);
}

tls_store::~tls_store() = default;

std::shared_ptr<ssl::context> tls_store::current() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return ctx_;
}

std::string tls_store::reload() {
  std::string error;
  std::string description;
  auto fresh = make_context(files_, error, description);
  if (!fresh)
    return error;
  std::lock_guard<std::mutex> guard{mtx_};
  ctx_ = std::move(fresh);
  description_ = std::move(description);
  return {};
}

std::string tls_store::describe() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return description_;
}

} // namespace tether::gateway
