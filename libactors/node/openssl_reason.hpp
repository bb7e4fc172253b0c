#pragma once

#include <string>

#include <openssl/err.h>

namespace tether::internal {

/// Empties this thread's OpenSSL error queue into one line of distinct reasons
/// ("unknown reason" if it was empty). Shared by the node's TLS and the gateway's.
inline std::string openssl_reason() {
  std::string out;
  while (auto e = ERR_get_error()) {
    const char* r = ERR_reason_error_string(e);
    if (r != nullptr && out.find(r) == std::string::npos)
      out += out.empty() ? std::string{r} : std::string{"; "} + r;
  }
  return out.empty() ? std::string{"unknown reason"} : out;
}

} // namespace tether::internal
