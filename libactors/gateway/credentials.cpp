#include "gateway/credentials.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/sha.h>

namespace tether::gateway {

namespace {

/// Tokens in a tokens file are at least this long: a short token can be guessed.
constexpr size_t min_token_chars = 16;
constexpr size_t max_token_chars = 4096;

bool printable_word(std::string_view s) {
  for (unsigned char c : s)
    if (c <= 0x20 || c >= 0x7f)
      return false;
  return true;
}

std::optional<role> role_of(std::string_view name) {
  if (name == "read")
    return role::read;
  if (name == "write")
    return role::write;
  if (name == "admin")
    return role::admin;
  return std::nullopt;
}

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
      ++i;
    auto start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t')
      ++i;
    if (i > start)
      out.push_back(line.substr(start, i - start));
  }
  return out;
}

} // namespace

std::string_view to_string_view(role r) noexcept {
  switch (r) {
    case role::read:
      return "read";
    case role::write:
      return "write";
    case role::admin:
      return "admin";
    default:
      return "none";
  }
}

bool credential::may_write_as(std::string_view producer) const noexcept {
  if (granted < role::write)
    return false;
  if (any_producer)
    return true;
  return producer.size() >= producer_prefix.size()
         && producer.substr(0, producer_prefix.size()) == producer_prefix;
}

token_table::digest token_table::hash_of(std::string_view token) {
  digest out;
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), out.data());
  return out;
}

std::shared_ptr<const token_table> token_table::parse(std::string_view text,
                                                      const std::string& legacy_token,
                                                      std::string& error) {
  auto out = std::make_shared<token_table>();
  std::vector<std::string> seen;
  auto add = [&](std::string_view token, credential c, const std::string& where) {
    for (auto& s : seen)
      if (s == token) {
        error = where + ": the token appears more than once";
        return false;
      }
    seen.emplace_back(token);
    out->entries_.push_back(entry{hash_of(token), std::move(c)});
    return true;
  };
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (auto hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    auto w = words(line);
    if (w.empty())
      continue;
    auto where = "line " + std::to_string(line_no);
    if (w.size() < 2 || w.size() > 3) {
      error = where + ": expected TOKEN ROLE [PRODUCER-PREFIX]";
      return nullptr;
    }
    if (w[0].size() < min_token_chars || w[0].size() > max_token_chars
        || !printable_word(w[0])) {
      error = where + ": a token must be " + std::to_string(min_token_chars) + " to "
              + std::to_string(max_token_chars) + " printable ASCII characters";
      return nullptr;
    }
    auto r = role_of(w[1]);
    if (!r) {
      error = where + ": role must be read, write or admin, not '" + std::string{w[1]}
              + "'";
      return nullptr;
    }
    credential c;
    c.granted = *r;
    if (w.size() == 3) {
      if (w[2] == "*")
        c.any_producer = true;
      else
        c.producer_prefix = std::string{w[2]};
    } else if (*r != role::read) {
      error = where + ": a " + std::string{w[1]}
              + " token needs a producer-id prefix ('*' for any)";
      return nullptr;
    }
    if (!add(w[0], std::move(c), where))
      return nullptr;
  }
  if (!legacy_token.empty()) {
    credential c;
    c.granted = role::admin;
    c.any_producer = true;
    if (!add(legacy_token, std::move(c), "tether.auth-token"))
      return nullptr;
  }
  return out;
}

std::shared_ptr<const token_table> token_table::load(const std::string& path,
                                                     const std::string& legacy_token,
                                                     std::string& error) {
  std::string text;
  if (!path.empty()) {
    std::ifstream in{path, std::ios::binary};
    if (!in) {
      error = "cannot read " + path;
      return nullptr;
    }
    std::ostringstream buf;
    buf << in.rdbuf();
    text = buf.str();
  }
  auto out = parse(text, legacy_token, error);
  if (!out && !path.empty())
    error = path + ": " + error;
  return out;
}

std::optional<credential> token_table::find(std::string_view token) const {
  auto h = hash_of(token);
  // Every entry is compared; the match is selected without a branch on the
  // comparison, so the time taken depends only on the table's size.
  size_t match = entries_.size();
  for (size_t i = 0; i < entries_.size(); ++i) {
    auto differs = CRYPTO_memcmp(h.data(), entries_[i].hash.data(), h.size()) != 0;
    auto mask = static_cast<size_t>(differs) - 1; // all ones when equal
    match = (i & mask) | (match & ~mask);
  }
  if (match == entries_.size())
    return std::nullopt;
  return entries_[match].grants;
}

credential_store::credential_store(std::string path, std::string legacy_token)
  : path_(std::move(path)), legacy_token_(std::move(legacy_token)) {
  std::string error;
  table_ = token_table::load(path_, legacy_token_, error);
  if (!table_)
    throw std::invalid_argument("tether.tokens-file: " + error);
}

std::shared_ptr<const token_table> credential_store::current() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return table_;
}

std::string credential_store::reload() {
  std::string error;
  auto fresh = token_table::load(path_, legacy_token_, error);
  if (!fresh)
    return error;
  std::lock_guard<std::mutex> guard{mtx_};
  table_ = std::move(fresh);
  return {};
}

auth_verdict check_bearer(const token_table& table, std::string_view header,
                          role needed) {
  if (!table.enabled() || needed == role::none)
    return auth_verdict::allowed;
  constexpr std::string_view scheme = "bearer ";
  if (header.size() <= scheme.size())
    return auth_verdict::unauthenticated;
  for (size_t i = 0; i < scheme.size(); ++i) {
    auto c = header[i];
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
    if (c != scheme[i])
      return auth_verdict::unauthenticated;
  }
  auto token = header.substr(scheme.size());
  while (!token.empty() && token.front() == ' ')
    token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ')
    token.remove_suffix(1);
  return check_token(table, token, needed);
}

auth_verdict check_token(const token_table& table, std::string_view token,
                         role needed) {
  if (!table.enabled() || needed == role::none)
    return auth_verdict::allowed;
  if (token.empty())
    return auth_verdict::unauthenticated;
  auto c = table.find(token);
  if (!c)
    return auth_verdict::unauthenticated;
  return c->granted >= needed ? auth_verdict::allowed : auth_verdict::forbidden;
}

} // namespace tether::gateway
