#include "host_port.hpp"

#include <cctype>
#include <charconv>

namespace tether::tools {

namespace {

bool valid_host_char(char c) {
  auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7f && c != '/' && c != '@' && c != '?' && c != '#'
         && c != '[' && c != ']';
}

result<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty())
    return fail("empty port");
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size())
    return fail("invalid port '" + std::string{text} + "'");
  if (value == 0 || value > 65535)
    return fail("port " + std::string{text} + " out of range 1..65535");
  return static_cast<std::uint16_t>(value);
}

} // namespace

std::string host_port::to_string() const {
  std::string out;
  bool ipv6 = host.find(':') != std::string::npos;
  if (ipv6)
    out += '[';
  out += host;
  if (ipv6)
    out += ']';
  out += ':';
  out += std::to_string(port);
  return out;
}

std::string host_port::to_url(bool websocket) const {
  std::string scheme = websocket ? (tls ? "wss" : "ws") : (tls ? "https" : "http");
  return scheme + "://" + to_string();
}

namespace {

/// Parses `text` as `parse_host_port` does; messages quote `shown`, the whole
/// argument.
result<host_port> parse_address(std::string_view shown, std::string_view text,
                                std::uint16_t default_port) {
  auto bad = [&](const std::string& why) {
    return fail("invalid server address '" + std::string{shown} + "': " + why);
  };
  if (text.empty())
    return bad("empty");
  if (auto pos = text.find("://"); pos != std::string_view::npos)
    return bad("expected HOST:PORT without a URL scheme");
  host_port out;
  out.port = default_port;
  std::string_view rest;
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos)
      return bad("missing ']' after IPv6 address");
    auto host = text.substr(1, close - 1);
    if (host.empty())
      return bad("empty host");
    // Hex groups, ':' and '.' (embedded IPv4), then an optional zone `%name`.
    auto zone = host.find('%');
    for (char c : host.substr(0, zone))
      if (!(c == ':' || c == '.' || std::isxdigit(static_cast<unsigned char>(c))))
        return bad("invalid IPv6 address");
    if (zone != std::string_view::npos) {
      auto name = host.substr(zone + 1);
      if (name.empty())
        return bad("empty IPv6 zone");
      for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
          return bad("invalid IPv6 zone");
    }
    out.host = std::string{host};
    rest = text.substr(close + 1);
    if (!rest.empty() && rest.front() != ':')
      return bad("unexpected text after ']'");
  } else {
    auto colon = text.find(':');
    if (colon != std::string_view::npos && text.find(':', colon + 1) != std::string_view::npos)
      return bad("IPv6 addresses must be written as [ADDRESS]:PORT");
    auto host = text.substr(0, colon);
    if (host.empty())
      return bad("empty host");
    for (char c : host)
      if (!valid_host_char(c))
        return bad("invalid character in host");
    out.host = std::string{host};
    rest = colon == std::string_view::npos ? std::string_view{} : text.substr(colon);
  }
  if (!rest.empty()) {
    auto port = parse_port(rest.substr(1));
    if (!port)
      return bad(port.error());
    out.port = *port;
  }
  if (out.port == 0)
    return bad("port 0 is not connectable");
  return out;
}

} // namespace

result<host_port> parse_host_port(std::string_view text, std::uint16_t default_port) {
  return parse_address(text, text, default_port);
}

result<host_port> parse_server(std::string_view text, std::uint16_t default_port) {
  auto rest = text;
  bool tls = false;
  if (auto pos = rest.find("://"); pos != std::string_view::npos) {
    std::string scheme{rest.substr(0, pos)};
    for (auto& c : scheme) // schemes are case-insensitive (RFC 3986)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme == "https" || scheme == "wss")
      tls = true;
    else if (scheme != "http" && scheme != "ws")
      return fail("invalid server address '" + std::string{text} + "': scheme '"
                  + scheme + "' is none of http, https, ws, wss");
    rest = rest.substr(pos + 3);
    if (!rest.empty() && rest.back() == '/')
      rest.remove_suffix(1);
  }
  auto out = parse_address(text, rest, default_port);
  if (out)
    out->tls = tls;
  return out;
}

} // namespace tether::tools
