#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include <caf/deserializer.hpp>
#include <caf/error.hpp>
#include <caf/sec.hpp>
#include <caf/serializer.hpp>

// A compact byte form for the blocks nodes send each other on every write: a shard
// write's samples and ranges, a replica batch's items and commit notes, a follower's
// acks. Fields are varints, deltas against the element before, or flags when they
// repeat it, instead of fixed-width structs: a sample takes about 30 bytes instead
// of 56, a replica item about 10 instead of 56. Fewer bytes per replicated sample
// is less to copy, to send and (between TLS nodes) to encrypt.
//
// Each block crosses CAF's serializers as one byte sequence. A reader that finds
// the bytes malformed (cut short, a count larger than the bytes could hold, a value
// out of range) refuses the whole message.

namespace tether::series::compact {

inline void put_varint(std::string& out, uint64_t x) {
  while (x >= 0x80) {
    out.push_back(static_cast<char>((x & 0x7f) | 0x80));
    x >>= 7;
  }
  out.push_back(static_cast<char>(x));
}

inline void put_zigzag(std::string& out, int64_t x) {
  put_varint(out, (static_cast<uint64_t>(x) << 1) ^ static_cast<uint64_t>(x >> 63));
}

inline void put_raw64(std::string& out, uint64_t x) {
  char b[8];
  std::memcpy(b, &x, 8); // the nodes of a cluster share their byte order
  out.append(b, 8);
}

inline void put_double(std::string& out, double x) {
  uint64_t bits = 0;
  std::memcpy(&bits, &x, 8);
  put_raw64(out, bits);
}

/// Reads what the put_* functions wrote; any read past the end or any malformed
/// varint clears `ok` and returns 0 from then on.
struct reader {
  const unsigned char* p;
  const unsigned char* end;
  bool ok = true;

  explicit reader(std::string_view bytes)
    : p(reinterpret_cast<const unsigned char*>(bytes.data())), end(p + bytes.size()) {
  }

  size_t left() const noexcept {
    return static_cast<size_t>(end - p);
  }

  uint64_t varint() {
    uint64_t x = 0;
    for (int shift = 0; shift < 64 && ok; shift += 7) {
      if (p == end)
        break;
      auto b = *p++;
      x |= uint64_t{b & 0x7fu} << shift;
      if (b < 0x80)
        return x;
    }
    ok = false;
    return 0;
  }

  int64_t zigzag() {
    auto u = varint();
    return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }

  uint64_t raw64() {
    if (!ok || left() < 8) {
      ok = false;
      return 0;
    }
    uint64_t x = 0;
    std::memcpy(&x, p, 8);
    p += 8;
    return x;
  }

  double real() {
    auto bits = raw64();
    double x = 0;
    std::memcpy(&x, &bits, 8);
    return x;
  }

  uint8_t byte() {
    if (!ok || p == end) {
      ok = false;
      return 0;
    }
    return *p++;
  }

  /// A varint that must fit in 32 bits.
  uint32_t u32() {
    auto x = varint();
    if (x > 0xffffffffu)
      ok = false;
    return static_cast<uint32_t>(x);
  }

  /// An element count: every element takes at least `min_bytes` bytes, so a count
  /// the remaining bytes cannot hold is malformed (and allocates nothing).
  size_t count(size_t min_bytes) {
    auto n = varint();
    if (n > left() / min_bytes)
      ok = false;
    return ok ? static_cast<size_t>(n) : 0;
  }
};

/// Largest block a node accepts from another (a replica batch of many writes).
constexpr size_t max_block_bytes = size_t{1} << 30;

/// Passes one block through a CAF inspector: `encode(std::string&)` fills the bytes
/// when saving, `decode(std::string_view) -> bool` reads them when loading. Other
/// inspectors (printing) see `fallback`.
template <class Inspector, class Encode, class Decode, class Fallback>
typename Inspector::result_type inspect_block(Inspector& f, Encode&& encode,
                                              Decode&& decode, Fallback&& fallback) {
  if constexpr (std::is_base_of<caf::serializer, Inspector>::value) {
    thread_local std::string buf;
    buf.clear();
    encode(buf);
    auto n = buf.size();
    return caf::error::eval([&] { return f.begin_sequence(n); },
                            [&] { return n > 0 ? f.apply_raw(n, &buf[0]) : caf::error{}; },
                            [&] { return f.end_sequence(); });
  } else if constexpr (std::is_base_of<caf::deserializer, Inspector>::value) {
    thread_local std::string buf;
    size_t n = 0;
    if (auto err = f.begin_sequence(n))
      return err;
    if (n > max_block_bytes)
      return caf::make_error(caf::sec::invalid_argument, "compact block too large");
    buf.resize(n);
    if (n > 0)
      if (auto err = f.apply_raw(n, &buf[0]))
        return err;
    if (auto err = f.end_sequence())
      return err;
    if (!decode(std::string_view{buf}))
      return caf::make_error(caf::sec::invalid_argument, "malformed compact block");
    return caf::error{};
  } else {
    return fallback();
  }
}

} // namespace tether::series::compact
