#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tether::gateway {

/// What a token may do; each role includes the ones below it.
enum class role : uint8_t {
  none = 0,  ///< no credential needed (health and readiness)
  read = 1,  ///< queries, subscriptions, the operator API's reads, /metrics
  write = 2, ///< as read, plus writes under the token's producer-id prefix
  admin = 3, ///< everything, including /v1/admin/* and any producer id
};

/// "read", "write", "admin" or "none".
std::string_view to_string_view(role r) noexcept;

/// What a presented token grants.
struct credential {
  role granted = role::none;
  /// Producer ids the holder may write under start with this; "*" (stored as an
  /// empty prefix with `any_producer`) allows every id.
  std::string producer_prefix;
  bool any_producer = false;

  /// Whether the holder may write under `producer`. Never true for a read token.
  bool may_write_as(std::string_view producer) const noexcept;
};

/// An immutable set of tokens, each with a role and a producer-id prefix. Lookups
/// compare a SHA-256 digest of the presented token with every entry in constant time
/// (no early exit, no dependence on where or whether it matches), so that timing
/// tells an attacker nothing about the tokens. Thread-safe (immutable).
class token_table {
public:
  /// A table that requires nothing: every request is allowed.
  token_table() = default;

  /// Parses the tokens file format of docs/security.md: one `TOKEN ROLE [PREFIX]`
  /// per line, `#` comments, `*` for any producer id. `legacy_token`, when not
  /// empty, is added as an admin token for any producer id (`tether.auth-token`).
  /// Returns nullptr and sets `error` (naming the line) when the text is invalid.
  static std::shared_ptr<const token_table> parse(std::string_view text,
                                                  const std::string& legacy_token,
                                                  std::string& error);

  /// Reads and parses `path` (empty: no file) plus `legacy_token`.
  static std::shared_ptr<const token_table> load(const std::string& path,
                                                 const std::string& legacy_token,
                                                 std::string& error);

  /// Whether any token is configured; without one every endpoint is open.
  bool enabled() const noexcept {
    return !entries_.empty();
  }

  size_t size() const noexcept {
    return entries_.size();
  }

  /// The credential `token` grants, or nullopt when it is not in the table.
  std::optional<credential> find(std::string_view token) const;

private:
  using digest = std::array<unsigned char, 32>;
  struct entry {
    digest hash;
    credential grants;
  };

  static digest hash_of(std::string_view token);

  std::vector<entry> entries_;
};

/// The node's current token table, replaced as a whole on reload (SIGHUP).
/// Thread-safe.
class credential_store {
public:
  /// Loads `path` and `legacy_token`; throws std::invalid_argument when the file
  /// cannot be read or parsed.
  credential_store(std::string path, std::string legacy_token);

  /// The table in force; requests hold it for as long as they check against it.
  std::shared_ptr<const token_table> current() const;

  /// Reads the file again; on error keeps the old table and returns the reason.
  std::string reload();

private:
  std::string path_;
  std::string legacy_token_;
  mutable std::mutex mtx_;
  std::shared_ptr<const token_table> table_;
};

/// Outcome of checking a request's credential against the role it needs.
enum class auth_verdict : uint8_t { allowed, unauthenticated, forbidden };

/// Checks the value of an HTTP `Authorization` header (`Bearer TOKEN`, scheme case
/// insensitive) against `needed`; with a table that is not enabled, allows all.
auth_verdict check_bearer(const token_table& table, std::string_view header,
                          role needed);

/// Checks a bare token (as taken from a URL's `access_token` parameter) against
/// `needed`; an empty token is no credential.
auth_verdict check_token(const token_table& table, std::string_view token,
                         role needed);

} // namespace tether::gateway
