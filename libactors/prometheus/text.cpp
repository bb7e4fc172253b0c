#include "prometheus/text.hpp"

#include "keys/series_key.hpp"

#include <charconv>
#include <cmath>

namespace tether::prom::internal {

namespace {

constexpr bool is_continuation(unsigned char c) noexcept {
  return (c & 0xC0) == 0x80;
}

template <class T>
void append_number(std::string& out, T value) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof(buf), value);
  out.append(buf, res.ptr);
}

} // namespace

bool valid_utf8(std::string_view text) noexcept {
  auto* p = reinterpret_cast<const unsigned char*>(text.data());
  auto* end = p + text.size();
  while (p != end) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    size_t len;
    uint32_t min;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      min = 0x80;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      min = 0x800;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      min = 0x10000;
      cp = c & 0x07;
    } else {
      return false; // a continuation byte or 0xF8..0xFF where a sequence starts
    }
    if (static_cast<size_t>(end - p) < len)
      return false;
    for (size_t i = 1; i < len; ++i) {
      if (!is_continuation(p[i]))
        return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    p += len;
  }
  return true;
}

bool valid_metric_name(std::string_view name) noexcept {
  return keys::valid_metric_name(name);
}

bool valid_label_name(std::string_view name) noexcept {
  return keys::valid_label_name(name);
}

void append_double(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else if (std::fabs(value) < 1e15 && std::trunc(value) == value) {
    // Exact: every integral double below 1e15 fits an int64 without rounding.
    append_number(out, static_cast<int64_t>(value));
  } else if (std::fabs(value) >= 1e15) {
    // Shortest digits, always with an exponent: a fixed form of a number this large
    // would pad the shortest digits with ones that carry no information.
    char buf[32];
    auto res = std::to_chars(buf, buf + sizeof(buf), value,
                             std::chars_format::scientific);
    out.append(buf, res.ptr);
  } else {
    append_number(out, value); // shortest round-trip form, fixed or scientific
  }
}

void append_int(std::string& out, int64_t value) {
  append_number(out, value);
}

void append_uint(std::string& out, uint64_t value) {
  append_number(out, value);
}

void append_escaped_help(std::string& out, std::string_view text) {
  for (auto c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

void append_escaped_label_value(std::string& out, std::string_view text) {
  keys::append_escaped_value(out, text);
}

} // namespace tether::prom::internal
