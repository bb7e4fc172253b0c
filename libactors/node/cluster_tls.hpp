#pragma once

#include <string>
#include <vector>

struct x509_st; // OpenSSL's X509

namespace tether::internal {

/// The certificate's subject common names and DNS subject alternative names, in
/// that order: the names a node's certificate can give it. Thread-safe.
std::vector<std::string> certificate_names(x509_st* cert);

/// Whether the PEM certificate at `path` names `node`: its subject's common name or
/// one of its DNS subject alternative names equals `node` exactly. Empty when it
/// does, else why not (unreadable file, no such name). Checks the node's own
/// certificate at start, so that a node cannot present a certificate for another
/// member by mistake. Thread-safe.
std::string check_certificate_names(const std::string& path, const std::string& node);

/// Whether this node's TLS files work: the certificate chain and the key load (with
/// `passphrase` if not empty) and belong together, the CA file loads, and the
/// certificate verifies against that CA as a TLS server and as a TLS client (what
/// every peer will check). Empty when they do, else which file is wrong and
/// OpenSSL's reason. Lets a node refuse to start instead of failing every handshake
/// later. Thread-safe.
std::string check_tls_files(const std::string& certificate, const std::string& key,
                            const std::string& cafile, const std::string& passphrase);

} // namespace tether::internal
