#include "replication/messages.hpp"

#include "series/compact.hpp"

namespace tether::replication {

using series::compact::put_varint;
using series::compact::put_zigzag;
using series::compact::reader;

namespace {

// Item flags: kind in bits 0-1; the bits below mark a field that repeats the item
// before (or, for prev_epoch, the item's own epoch) and is not written.
constexpr uint8_t same_epoch = 4;
constexpr uint8_t prev_is_epoch = 8;
constexpr uint8_t same_clock = 16;
constexpr uint8_t has_windows = 32;
constexpr uint8_t all_item_flags = 3 | same_epoch | prev_is_epoch | same_clock | has_windows;

/// A window list is at most a slice's window lengths; a corrupt count must not make
/// the reader allocate gigabytes.
constexpr size_t max_windows = 4096;

int64_t minus(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}

int64_t plus(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

} // namespace

void encode_items(const std::vector<replica_item>& xs, std::string& out) {
  put_varint(out, xs.size());
  uint64_t epoch = 0;
  int64_t clock = 0;
  for (auto& x : xs) {
    auto flags = static_cast<uint8_t>(static_cast<uint8_t>(x.kind) & 3);
    if (x.epoch == epoch)
      flags |= same_epoch;
    if (x.prev_epoch == x.epoch)
      flags |= prev_is_epoch;
    if (x.now_ms == clock)
      flags |= same_clock;
    if (!x.windows.empty())
      flags |= has_windows;
    out.push_back(static_cast<char>(flags));
    put_varint(out, x.slice);
    if (!(flags & same_epoch))
      put_varint(out, x.epoch);
    put_varint(out, x.seq);
    if (!(flags & prev_is_epoch))
      put_varint(out, x.prev_epoch);
    if (!(flags & same_clock))
      put_zigzag(out, minus(x.now_ms, clock));
    put_varint(out, x.write);
    put_varint(out, x.range);
    if (flags & has_windows) {
      put_varint(out, x.windows.size());
      for (auto& w : x.windows) {
        put_varint(out, w.window_ms);
        put_zigzag(out, w.start);
      }
    }
    epoch = x.epoch;
    clock = x.now_ms;
  }
}

bool decode_items(std::string_view bytes, std::vector<replica_item>& xs) {
  reader in{bytes};
  auto n = in.count(5); // flags, slice, seq, write, range
  xs.clear();
  xs.reserve(n);
  uint64_t epoch = 0;
  int64_t clock = 0;
  for (size_t i = 0; i < n && in.ok; ++i) {
    auto& x = xs.emplace_back();
    auto flags = in.byte();
    if ((flags & ~all_item_flags) != 0 || (flags & 3) > 2)
      return false;
    x.kind = static_cast<item_kind>(flags & 3);
    x.slice = in.u32();
    x.epoch = (flags & same_epoch) ? epoch : in.varint();
    x.seq = in.varint();
    x.prev_epoch = (flags & prev_is_epoch) ? x.epoch : in.varint();
    x.now_ms = (flags & same_clock) ? clock : plus(clock, in.zigzag());
    x.write = in.u32();
    x.range = in.u32();
    if (flags & has_windows) {
      auto nw = in.count(2);
      if (nw > max_windows)
        return false;
      x.windows.resize(nw);
      for (auto& w : x.windows) {
        w.window_ms = in.u32();
        w.start = in.zigzag();
      }
    }
    epoch = x.epoch;
    clock = x.now_ms;
  }
  return in.ok && in.left() == 0;
}

void encode_commits(const std::vector<commit_note>& xs, std::string& out) {
  put_varint(out, xs.size());
  for (auto& c : xs) {
    put_varint(out, c.slice);
    put_varint(out, c.epoch);
    put_varint(out, c.seq);
  }
}

bool decode_commits(std::string_view bytes, std::vector<commit_note>& xs) {
  reader in{bytes};
  auto n = in.count(3);
  xs.clear();
  xs.reserve(n);
  for (size_t i = 0; i < n && in.ok; ++i) {
    auto& c = xs.emplace_back();
    c.slice = in.u32();
    c.epoch = in.varint();
    c.seq = in.varint();
  }
  return in.ok && in.left() == 0;
}

void encode_acks(const std::vector<replica_ack>& xs, std::string& out) {
  put_varint(out, xs.size());
  for (auto& a : xs) {
    put_varint(out, a.slice);
    out.push_back(static_cast<char>(a.code));
    put_varint(out, a.epoch);
    put_varint(out, a.seq);
    put_varint(out, a.item);
  }
}

bool decode_acks(std::string_view bytes, std::vector<replica_ack>& xs) {
  reader in{bytes};
  auto n = in.count(5);
  xs.clear();
  xs.reserve(n);
  for (size_t i = 0; i < n && in.ok; ++i) {
    auto& a = xs.emplace_back();
    a.slice = in.u32();
    auto code = in.byte();
    if (code > static_cast<uint8_t>(ack_code::ahead))
      return false;
    a.code = static_cast<ack_code>(code);
    a.epoch = in.varint();
    a.seq = in.varint();
    a.item = in.varint();
  }
  return in.ok && in.left() == 0;
}

} // namespace tether::replication
