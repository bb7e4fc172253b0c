#include "node/cluster_tls.hpp"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <vector>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "node/openssl_reason.hpp"

namespace tether::internal {

namespace {

struct file_closer {
  void operator()(FILE* f) const {
    std::fclose(f);
  }
};

struct x509_free {
  void operator()(X509* x) const {
    X509_free(x);
  }
};

std::string text_of(ASN1_STRING* s) {
  if (s == nullptr)
    return {};
  auto* data = ASN1_STRING_get0_data(s);
  auto len = ASN1_STRING_length(s);
  if (data == nullptr || len <= 0)
    return {};
  return std::string{reinterpret_cast<const char*>(data), static_cast<size_t>(len)};
}



int passphrase_cb(char* buf, int size, int, void* user) {
  auto* pass = static_cast<const std::string*>(user);
  if (size <= 0)
    return 0;
  auto n = std::min(pass->size(), static_cast<size_t>(size - 1));
  std::copy_n(pass->data(), n, buf);
  buf[n] = '\0';
  return static_cast<int>(n);
}

struct ctx_free {
  void operator()(SSL_CTX* c) const {
    SSL_CTX_free(c);
  }
};

struct store_ctx_free {
  void operator()(X509_STORE_CTX* c) const {
    X509_STORE_CTX_free(c);
  }
};

} // namespace

std::vector<std::string> certificate_names(x509_st* cert) {
  std::vector<std::string> out;
  auto* subject = X509_get_subject_name(cert);
  for (int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(subject, NID_commonName, i))
    out.push_back(text_of(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i))));
  auto* sans = static_cast<GENERAL_NAMES*>(
    X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      auto* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type == GEN_DNS)
        out.push_back(text_of(gn->d.dNSName));
    }
    GENERAL_NAMES_free(sans);
  }
  return out;
}

std::string check_tls_files(const std::string& certificate, const std::string& key,
                            const std::string& cafile, const std::string& passphrase) {
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, ctx_free> ctx{SSL_CTX_new(TLS_method())};
  if (!ctx)
    return "cannot create an OpenSSL context: " + openssl_reason();
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), certificate.c_str()) != 1)
    return "openssl.certificate " + certificate + ": " + openssl_reason();
  std::string pass = passphrase;
  if (!pass.empty()) {
    SSL_CTX_set_default_passwd_cb(ctx.get(), passphrase_cb);
    SSL_CTX_set_default_passwd_cb_userdata(ctx.get(), &pass);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1)
    return "openssl.key " + key + ": " + openssl_reason();
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return "openssl.key " + key + " does not belong to openssl.certificate "
           + certificate;
  if (SSL_CTX_load_verify_locations(ctx.get(), cafile.c_str(), nullptr) != 1)
    return "openssl.cafile " + cafile + ": " + openssl_reason();
  // Peers check this node's certificate against the same CA, as a server and as a
  // client: a certificate they would refuse is refused here, at start.
  auto* store = SSL_CTX_get_cert_store(ctx.get());
  auto* own = SSL_CTX_get0_certificate(ctx.get());
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(ctx.get(), &chain);
  for (int purpose : {X509_PURPOSE_SSL_SERVER, X509_PURPOSE_SSL_CLIENT}) {
    std::unique_ptr<X509_STORE_CTX, store_ctx_free> vc{X509_STORE_CTX_new()};
    if (!vc || X509_STORE_CTX_init(vc.get(), store, own, chain) != 1)
      return "cannot verify openssl.certificate: " + openssl_reason();
    X509_STORE_CTX_set_purpose(vc.get(), purpose);
    if (X509_verify_cert(vc.get()) != 1)
      return "openssl.certificate " + certificate + " does not verify against openssl.cafile "
             + cafile + " for use as a TLS "
             + (purpose == X509_PURPOSE_SSL_SERVER ? "server" : "client") + ": "
             + X509_verify_cert_error_string(X509_STORE_CTX_get_error(vc.get()))
             + " (node certificates need extendedKeyUsage serverAuth,clientAuth or none)";
  }
  ERR_clear_error();
  return {};
}

std::string check_certificate_names(const std::string& path, const std::string& node) {
  std::unique_ptr<FILE, file_closer> f{std::fopen(path.c_str(), "r")};
  if (!f)
    return "cannot read the certificate " + path;
  std::unique_ptr<X509, x509_free> cert{PEM_read_X509(f.get(), nullptr, nullptr, nullptr)};
  if (!cert)
    return path + " is not a PEM certificate";
  auto names = certificate_names(cert.get());
  for (auto& n : names)
    if (n == node)
      return {};
  std::string listed;
  for (auto& n : names)
    listed += (listed.empty() ? "" : ", ") + n;
  return "the certificate " + path + " names " + (listed.empty() ? "nobody" : listed)
         + ", not this node '" + node + "' (its CN or a DNS SAN must be the node name)";
}

} // namespace tether::internal
