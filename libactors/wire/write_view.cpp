#include "wire/write_view.hpp"

#include <cstring>

#include "keys/utf8.hpp"

namespace tether::wire {

namespace {

// Protobuf wire types (https://protobuf.dev/programming-guides/encoding/).
constexpr uint32_t varint = 0;
constexpr uint32_t fixed64 = 1;
constexpr uint32_t length_delimited = 2;

/// A cursor over one message's bytes. Every read returns false on anything this
/// reader does not take; the caller then leaves the frame to libprotobuf.
struct cursor {
  const unsigned char* p;
  const unsigned char* end;

  bool done() const {
    return p == end;
  }

  /// A varint of at most 9 bytes (63 bits). Longer ones, valid or not, are left to
  /// libprotobuf: no field a client sends needs them except negative numbers, which
  /// the keyer refuses anyway.
  bool read_varint(uint64_t& out) {
    uint64_t x = 0;
    for (int shift = 0; shift < 63; shift += 7) {
      if (p == end)
        return false;
      auto b = *p++;
      x |= uint64_t{b & 0x7fu} << shift;
      if (b < 0x80) {
        out = x;
        return true;
      }
    }
    return false;
  }

  bool read_tag(uint32_t& field, uint32_t& type) {
    uint64_t tag = 0;
    if (!read_varint(tag) || tag > 0xffffffffu)
      return false;
    field = static_cast<uint32_t>(tag >> 3);
    type = static_cast<uint32_t>(tag & 7);
    return field != 0;
  }

  bool read_fixed64(uint64_t& out) {
    if (end - p < 8)
      return false;
    out = 0;
    for (int i = 7; i >= 0; --i) // little-endian on the wire, whatever the host
      out = (out << 8) | p[i];
    p += 8;
    return true;
  }

  /// The body of a length-delimited field.
  bool read_bytes(cursor& body) {
    uint64_t n = 0;
    if (!read_varint(n) || n > static_cast<uint64_t>(end - p))
      return false;
    body = cursor{p, p + n};
    p += n;
    return true;
  }

  /// A proto3 `string`: libprotobuf refuses a frame whose strings are not UTF-8.
  bool read_string(std::string_view& out) {
    cursor body{};
    if (!read_bytes(body))
      return false;
    out = {reinterpret_cast<const char*>(body.p), static_cast<size_t>(body.end - body.p)};
    return keys::valid_utf8(out);
  }
};

bool read_label(cursor c, label_view& out) {
  out = {};
  while (!c.done()) {
    uint32_t field = 0;
    uint32_t type = 0;
    if (!c.read_tag(field, type) || type != length_delimited)
      return false;
    if (field == 1) {
      if (!c.read_string(out.name))
        return false;
    } else if (field == 2) {
      if (!c.read_string(out.value))
        return false;
    } else {
      return false;
    }
  }
  return true;
}

bool read_sample(cursor c, write_view& w) {
  sample_view s;
  s.label_begin = static_cast<uint32_t>(w.labels.size());
  while (!c.done()) {
    uint32_t field = 0;
    uint32_t type = 0;
    if (!c.read_tag(field, type))
      return false;
    uint64_t x = 0;
    switch (field) {
      case 1: // name
        if (type != length_delimited || !c.read_string(s.name))
          return false;
        break;
      case 2: { // labels
        cursor body{};
        if (type != length_delimited || !c.read_bytes(body))
          return false;
        if (!read_label(body, w.labels.emplace_back()))
          return false;
        break;
      }
      case 3: // kind
      case 6: // counter_mode
        if (type != varint || !c.read_varint(x))
          return false;
        // An open enum keeps any number; libprotobuf narrows the varint to 32 bits.
        (field == 3 ? s.kind : s.mode) = static_cast<int32_t>(static_cast<uint32_t>(x));
        break;
      case 4: // value
        if (type != fixed64 || !c.read_fixed64(x))
          return false;
        std::memcpy(&s.value, &x, sizeof x);
        break;
      case 5: // timestamp_ms
        if (type != varint || !c.read_varint(x))
          return false;
        s.timestamp_ms = static_cast<int64_t>(x);
        break;
      default:
        return false;
    }
  }
  s.label_end = static_cast<uint32_t>(w.labels.size());
  w.samples.push_back(s);
  return true;
}

bool read_write(cursor c, write_view& w) {
  while (!c.done()) {
    uint32_t field = 0;
    uint32_t type = 0;
    if (!c.read_tag(field, type))
      return false;
    if (field == 1 && type == varint) {
      if (!c.read_varint(w.sequence))
        return false;
    } else if (field == 2 && type == length_delimited) {
      cursor body{};
      if (!c.read_bytes(body) || !read_sample(body, w))
        return false;
    } else {
      return false;
    }
  }
  return true;
}

} // namespace

bool read_write_frame(std::string_view bytes, write_view& out) {
  out.sequence = 0;
  out.samples.clear();
  out.labels.clear();
  auto* begin = reinterpret_cast<const unsigned char*>(bytes.data());
  cursor frame{begin, begin + bytes.size()};
  // ClientFrame: exactly one field, `Write write = 2`. A repeated or second oneof
  // member has merge rules of its own; libprotobuf applies them.
  uint32_t field = 0;
  uint32_t type = 0;
  if (!frame.read_tag(field, type) || field != 2 || type != length_delimited)
    return false;
  cursor body{};
  if (!frame.read_bytes(body) || !frame.done())
    return false;
  return read_write(body, out);
}

} // namespace tether::wire
