#pragma once

// One WebSocket frame through what `ws_session::on_frame` runs before anything reaches
// an actor: decoding into an arena, then per request the validation and keying of a
// write (`wire::batch_keyer`), the parsing of query and subscribe keys
// (`keys::canonicalise`) and the error frames sent back. Shared by the binary and the
// JSON harness.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include <google/protobuf/arena.h>

#include "fuzz_support.hpp"
#include "keys/series_key.hpp"
#include "keys/slicing.hpp"
#include "wire/keyed_batch.hpp"
#include "wire/write_view.hpp"

namespace tether::fuzz {

/// A key the node accepted must come out of a second canonicalisation unchanged: the
/// canonical text is what routing hashes, so two spellings must not give two keys.
inline void check_canonical(std::string_view key) {
  auto& lim = defaults().limits;
  std::string again;
  std::string error;
  auto code = keys::canonicalise(key, lim.max_labels_per_sample, lim.max_key_bytes,
                                 again, error);
  require(code == errc::none, "a canonical key parses", key);
  require(again == key, "canonical keys are a fixed point", key);
}

/// Keys `write` as a session does with `rules`, checks every keyed sample and sends
/// the error or nothing.
inline void key_write(const v1::Write& write, const rules::rule_set& rules,
                      wire::encoding enc) {
  auto& opts = defaults();
  wire::batch_keyer keyer{opts.limits, opts.slice_count};
  wire::keyed_batch batch;
  if (auto err = keyer.key(write, now_ms, rules, batch))
    return send_error(enc, err.code, err.message, write.sequence(), 0, err.index);
  require(batch.samples.size() == static_cast<size_t>(write.samples_size()),
          "a keyed batch holds every sample");
  for (auto& s : batch.samples) {
    require(size_t{s.key_offset} + s.key_size <= batch.keys.size(),
            "keys lie inside the batch's arena");
    auto key = batch.key(s);
    require(s.hash == keys::key_hash(key), "the hash is the key's");
    require(s.slice < opts.slice_count, "the slice exists");
    require(s.key_size <= opts.limits.max_key_bytes, "keys respect max_key_bytes");
    check_canonical(key);
  }
}

/// Canonicalises one query or subscribe key with the node's limits.
inline bool key_text(const std::string& text, uint64_t request_id,
                     wire::encoding enc) {
  auto& lim = defaults().limits;
  std::string key;
  std::string error;
  auto code = keys::canonicalise(text, lim.max_labels_per_sample, lim.max_key_bytes,
                                 key, error);
  if (code != errc::none) {
    send_error(enc, errc::invalid_key, "invalid series key: " + error, 0, request_id);
    return false;
  }
  check_canonical(key);
  return true;
}

/// The session reads binary writes in place (wire/write_view.hpp) and leaves every
/// other frame to libprotobuf: whatever the in-place reader takes, libprotobuf must
/// decode to the same write, and the keyer must do the same with both.
inline void check_in_place(std::string_view bytes, bool decoded,
                           const v1::ClientFrame& frame) {
  static wire::write_view view;
  if (!wire::read_write_frame(bytes, view))
    return;
  require(decoded && frame.frame_case() == v1::ClientFrame::kWrite,
          "a frame read in place is a write for libprotobuf too");
  auto& w = frame.write();
  require(view.sequence == w.sequence(), "same sequence");
  require(view.samples.size() == static_cast<size_t>(w.samples_size()), "same samples");
  for (size_t i = 0; i < view.samples.size(); ++i) {
    auto& a = view.samples[i];
    auto& b = w.samples(static_cast<int>(i));
    double bv = b.value();
    require(a.name == b.name() && a.kind == b.kind() && a.mode == b.counter_mode()
              && std::memcmp(&a.value, &bv, sizeof bv) == 0
              && a.timestamp_ms == b.timestamp_ms()
              && a.label_end - a.label_begin == static_cast<uint32_t>(b.labels_size()),
            "same sample", a.name);
    for (int j = 0; j < b.labels_size(); ++j) {
      auto& l = view.labels[a.label_begin + j];
      require(l.name == b.labels(j).name() && l.value == b.labels(j).value(),
              "same label", l.name);
    }
  }
  auto& opts = defaults();
  wire::batch_keyer keyer{opts.limits, opts.slice_count};
  wire::keyed_batch x;
  wire::keyed_batch y;
  auto ex = keyer.key(view, now_ms, example_rules(), x);
  auto ey = keyer.key(w, now_ms, example_rules(), y);
  require(ex.code == ey.code && ex.index == ey.index && ex.message == ey.message,
          "the keyer answers both alike", ex.message);
  require(ex || (x.keys == y.keys && x.samples.size() == y.samples.size()),
          "the keyer keys both alike");
}

/// Runs one frame of `size` bytes at `data` received with encoding `enc`.
inline void run_frame(const uint8_t* data, size_t size, wire::encoding enc) {
  // As the session: the first arena block is a reused scratch buffer.
  constexpr size_t arena_block_bytes = 1 << 20;
  static std::unique_ptr<char[]> scratch{new char[arena_block_bytes]};
  if (size > defaults().limits.max_frame_bytes)
    return; // the session discards it unread (FRAME_TOO_LARGE)
  google::protobuf::ArenaOptions ao;
  ao.initial_block = scratch.get();
  ao.initial_block_size = arena_block_bytes;
  google::protobuf::Arena arena{ao};
  auto& frame = *google::protobuf::Arena::CreateMessage<v1::ClientFrame>(&arena);
  std::string error;
  std::string_view bytes{reinterpret_cast<const char*>(data), size};
  bool decoded = wire::decode(bytes, enc, frame, error);
  if (enc == wire::encoding::binary)
    check_in_place(bytes, decoded, frame);
  if (!decoded)
    return send_error(enc, errc::malformed_frame, error);
  switch (frame.frame_case()) {
    case v1::ClientFrame::kPing: {
      v1::ServerFrame out;
      out.mutable_pong()->set_nonce(frame.ping().nonce());
      return check_sent(out, enc);
    }
    case v1::ClientFrame::kHello: {
      // Checking the token and producer id is the session's; it answers with limits.
      v1::ServerFrame out;
      auto* w = out.mutable_welcome();
      w->set_node(defaults().name);
      w->set_protocol_version(frame.hello().protocol_version());
      w->set_max_frame_bytes(defaults().limits.max_frame_bytes);
      return check_sent(out, enc);
    }
    case v1::ClientFrame::kWrite:
      key_write(frame.write(), no_rules(), enc);
      key_write(frame.write(), example_rules(), enc);
      return;
    case v1::ClientFrame::kQuery:
      key_text(frame.query().key(), frame.query().request_id(), enc);
      return;
    case v1::ClientFrame::kSubscribe:
      for (auto& text : frame.subscribe().keys())
        if (!key_text(text, frame.subscribe().request_id(), enc))
          return;
      return;
    default:
      return send_error(enc, errc::malformed_frame, "frame carries no known request");
  }
}

} // namespace tether::fuzz
