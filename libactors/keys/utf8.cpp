#include "keys/utf8.hpp"

#include <algorithm>
#include <cstdint>

namespace tether::keys {

namespace {

constexpr bool continuation(unsigned char c) noexcept {
  return (c & 0xC0) == 0x80;
}

void append_hex(std::string& out, unsigned char c) {
  constexpr const char* digits = "0123456789abcdef";
  out += "\\x";
  out += digits[c >> 4];
  out += digits[c & 0xF];
}

} // namespace

size_t utf8_sequence_length(std::string_view text) noexcept {
  if (text.empty())
    return 0;
  auto c = static_cast<unsigned char>(text[0]);
  if (c < 0x80)
    return 1;
  size_t len;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (text.size() < len)
    return 0;
  for (size_t i = 1; i < len; ++i) {
    auto d = static_cast<unsigned char>(text[i]);
    if (!continuation(d))
      return 0;
    cp = (cp << 6) | (d & 0x3F);
  }
  static constexpr uint32_t min_of[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_of[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

bool valid_utf8(std::string_view text) noexcept {
  size_t i = 0;
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    auto len = utf8_sequence_length(text.substr(i));
    if (len == 0)
      return false;
    i += len;
  }
  return true;
}

void append_printable(std::string& out, std::string_view text, size_t max_bytes) {
  size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    size_t len = utf8_sequence_length(text.substr(i));
    size_t step = len == 0 ? 1 : len;
    if (i + step > max_bytes) {
      out += "...";
      return;
    }
    if (len == 0 || (len == 1 && (c < 0x20 || c == 0x7F)))
      append_hex(out, c);
    else
      out.append(text.data() + i, len);
    i += step;
  }
}

std::string quoted(std::string_view text, size_t max_bytes) {
  std::string out = "'";
  append_printable(out, text, max_bytes);
  out += '\'';
  return out;
}

std::string sanitised(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes && valid_utf8(text))
    return std::string{text};
  std::string out;
  out.reserve(std::min(text.size(), max_bytes) + 8);
  size_t i = 0;
  while (i < text.size()) {
    size_t len = utf8_sequence_length(text.substr(i));
    size_t step = len == 0 ? 1 : len;
    if (i + step > max_bytes) {
      out += "...";
      break;
    }
    if (len == 0)
      append_hex(out, static_cast<unsigned char>(text[i]));
    else
      out.append(text.data() + i, len);
    i += step;
  }
  return out;
}

} // namespace tether::keys
