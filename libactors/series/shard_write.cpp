#include "series/shard_write.hpp"

#include "series/compact.hpp"

namespace tether::series {

using compact::put_double;
using compact::put_raw64;
using compact::put_varint;
using compact::put_zigzag;

namespace {

// Sample flags: kind in bits 0-1, counter mode in bit 2, bit 3 when the input hash
// is the output hash (no rule shaped the key).
constexpr uint8_t mode_bit = 4;
constexpr uint8_t same_input_bit = 8;

/// `base + delta` as a 32-bit position, false when outside [0, 2^32).
bool position(int64_t base, int64_t delta, uint32_t& out) {
  constexpr int64_t top = 0xffffffffll;
  if (delta < -base || delta > top - base)
    return false;
  out = static_cast<uint32_t>(base + delta);
  return true;
}

/// Differences of timestamps wrap instead of overflowing.
int64_t minus(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}

int64_t plus(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

} // namespace

void encode_samples(const std::vector<wire::keyed_sample>& xs, std::string& out) {
  put_varint(out, xs.size());
  uint64_t key_end = 0; // where the previous sample's key ended: keys are in order
  int64_t ts = 0;
  for (auto& s : xs) {
    auto flags = static_cast<uint8_t>(static_cast<uint8_t>(s.kind) & 3);
    if (s.mode == counter_mode::cumulative)
      flags |= mode_bit;
    if (s.input_hash == s.hash)
      flags |= same_input_bit;
    out.push_back(static_cast<char>(flags));
    put_raw64(out, s.hash);
    if (s.input_hash != s.hash)
      put_raw64(out, s.input_hash);
    put_zigzag(out, static_cast<int64_t>(s.key_offset) - static_cast<int64_t>(key_end));
    put_varint(out, s.key_size);
    put_varint(out, s.slice);
    put_varint(out, s.window_ms);
    put_varint(out, s.rule);
    put_double(out, s.value);
    put_zigzag(out, minus(s.timestamp_ms, ts));
    key_end = uint64_t{s.key_offset} + s.key_size;
    ts = s.timestamp_ms;
  }
}

bool decode_samples(std::string_view bytes, std::vector<wire::keyed_sample>& xs) {
  compact::reader in{bytes};
  // flags, hash, five varints, value, timestamp: at least 22 bytes a sample
  auto n = in.count(22);
  if (n > raw_vector_limit)
    return false;
  xs.clear();
  xs.reserve(n);
  int64_t key_end = 0;
  int64_t ts = 0;
  for (size_t i = 0; i < n && in.ok; ++i) {
    auto& s = xs.emplace_back();
    auto flags = in.byte();
    if (flags > (3 | mode_bit | same_input_bit))
      return false;
    s.kind = static_cast<tether::kind>(flags & 3);
    s.mode = (flags & mode_bit) ? counter_mode::cumulative : counter_mode::delta;
    s.hash = in.raw64();
    s.input_hash = (flags & same_input_bit) ? s.hash : in.raw64();
    if (!position(key_end, in.zigzag(), s.key_offset))
      return false;
    s.key_size = in.u32();
    s.slice = in.u32();
    s.window_ms = in.u32();
    s.rule = in.u32();
    s.value = in.real();
    ts = plus(ts, in.zigzag());
    s.timestamp_ms = ts;
    key_end = int64_t{s.key_offset} + s.key_size;
  }
  return in.ok && in.left() == 0;
}

void encode_ranges(const std::vector<slice_range>& xs, std::string& out) {
  put_varint(out, xs.size());
  uint64_t epoch = 0;
  uint32_t end = 0;
  for (auto& r : xs) {
    put_varint(out, r.slice);
    put_zigzag(out, static_cast<int64_t>(r.epoch - epoch));
    put_zigzag(out, static_cast<int64_t>(r.begin) - end);
    put_zigzag(out, static_cast<int64_t>(r.end) - r.begin);
    epoch = r.epoch;
    end = r.end;
  }
}

bool decode_ranges(std::string_view bytes, std::vector<slice_range>& xs) {
  compact::reader in{bytes};
  auto n = in.count(4);
  xs.clear();
  xs.reserve(n);
  uint64_t epoch = 0;
  int64_t end = 0;
  for (size_t i = 0; i < n && in.ok; ++i) {
    auto& r = xs.emplace_back();
    r.slice = in.u32();
    epoch += static_cast<uint64_t>(in.zigzag());
    r.epoch = epoch;
    if (!position(end, in.zigzag(), r.begin) || !position(r.begin, in.zigzag(), r.end))
      return false;
    end = r.end;
  }
  return in.ok && in.left() == 0;
}

} // namespace tether::series
