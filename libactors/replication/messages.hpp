#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/deserializer.hpp>
#include <caf/error.hpp>
#include <caf/sec.hpp>
#include <caf/serializer.hpp>

#include "series/shard_write.hpp"

// The messages of a slice's replication stream (README.md, "The protocol"): what a
// primary shard sends its followers' shards and what they answer.

namespace tether::replication {

/// What one item of a slice's replication stream does.
enum class item_kind : uint8_t {
  write = 0,   ///< apply one range of the batch's write
  close = 1,   ///< close the listed windows of the slice
  barrier = 2, ///< nothing: a new primary's first item, which levels its followers
};

/// One window length and start, as a close mark lists it.
struct window_ref {
  uint32_t window_ms = 0;
  int64_t start = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, window_ref& x) {
  return f(x.window_ms, x.start);
}

/// One item of a slice's replication stream. A follower applies it only if it
/// holds the slice at `prev` (the position of the item before it): same epoch of
/// the last applied item and sequence `seq - 1`, and only if `epoch` is not below
/// the highest epoch it knows for the slice.
struct replica_item {
  uint32_t slice = 0;
  uint64_t epoch = 0;      ///< the primary's epoch when it made the item
  uint64_t seq = 0;
  uint64_t prev_epoch = 0; ///< epoch of the item (or seed) at seq - 1
  item_kind kind = item_kind::barrier;
  int64_t now_ms = 0;      ///< the primary's clock when it applied the item
  uint32_t write = 0;      ///< write: index into the batch's `writes`
  uint32_t range = 0;      ///< write: index into that write's `ranges`
  std::vector<window_ref> windows; ///< close: the windows it closes
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replica_item& x) {
  return f(x.slice, x.epoch, x.seq, x.prev_epoch, x.kind, x.now_ms, x.write, x.range,
           x.windows);
}

/// The compact byte forms (series/compact.hpp) of a batch's items, commit notes
/// and a follower's acks. The decoders return false for malformed bytes.
void encode_items(const std::vector<replica_item>& xs, std::string& out);
bool decode_items(std::string_view bytes, std::vector<replica_item>& xs);

/// A replica batch's items in their compact form for CAF's serializers: an item
/// is about 10 bytes, its fields mostly repeating the item before.
struct item_block {
  std::vector<replica_item>* xs;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, item_block& b) {
  return series::compact::inspect_block(
    f, [&](std::string& out) { encode_items(*b.xs, out); },
    [&](std::string_view in) { return decode_items(in, *b.xs); },
    [&] { return f(*b.xs); });
}

/// The highest sequence of a slice's stream that a write quorum has applied, as
/// the primary tells its followers (they track the flush watermark with it).
struct commit_note {
  uint32_t slice = 0;
  uint64_t epoch = 0;
  uint64_t seq = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, commit_note& x) {
  return f(x.slice, x.epoch, x.seq);
}

void encode_commits(const std::vector<commit_note>& xs, std::string& out);
bool decode_commits(std::string_view bytes, std::vector<commit_note>& xs);

struct commit_block {
  std::vector<commit_note>* xs;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, commit_block& b) {
  return series::compact::inspect_block(
    f, [&](std::string& out) { encode_commits(*b.xs, out); },
    [&](std::string_view in) { return decode_commits(in, *b.xs); },
    [&] { return f(*b.xs); });
}

/// The answer a follower gives a write's requester itself: `(near_ack_atom, token,
/// result)`, sent by the follower shard on the requester's node (see `near_ack`).
using near_ack_atom = caf::atom_constant<caf::atom("tt_nearack")>;

/// A write whose requester (an ingest on another node than the primary) shares a
/// node with this follower, and whose every item the primary made is in this batch.
/// With a write quorum of two, the primary and this follower make the quorum: once
/// the follower applied `items` it answers the requester with the primary's `result`
/// (at `token`), a network round trip before the primary learns of it. The primary
/// drops its own answer once this follower's ack shows it answered (README.md,
/// "Near answers").
struct near_ack {
  caf::actor to;               ///< the requester
  uint64_t token = 0;          ///< the requester's number for the write
  std::vector<uint32_t> items; ///< indexes into the batch's `items`
  series::shard_write_result result;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, near_ack& x) {
  return f(x.to, x.token, x.items, x.result);
}

/// What a primary shard sends one follower shard at once: the items of every slice
/// they share that the writes (and ticks) handled since the last send produced, in
/// stream order per slice, the samples of their write ranges, and commit notes.
/// Writes that queue up behind each other go out together (group commit): one
/// message, one answer and one round of thread wake-ups for all of them.
struct replica_batch {
  /// Producer, sequence, keys and samples of the write items, one entry per shard
  /// write in the order the primary applied them.
  std::vector<series::shard_write> writes;
  std::vector<replica_item> items;
  std::vector<commit_note> commits;
  /// Writes this follower answers their requesters itself once it applied them.
  std::vector<near_ack> nears;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replica_batch& x) {
  item_block items{&x.items};
  commit_block commits{&x.commits};
  return f(x.writes, items, commits, x.nears);
}

/// A follower's answer for one slice.
enum class ack_code : uint8_t {
  ok = 0,       ///< applied through `seq`
  stale = 1,    ///< the sender's epoch is below `epoch`, the highest the replica knows
  gap = 2,      ///< the replica stands elsewhere (`epoch`, `seq`): it needs a snapshot
  unseeded = 3, ///< the replica holds nothing for the slice: it needs a snapshot
  ahead = 4,    ///< a seed would take the replica back: it holds more of the stream
};

/// One slice's outcome of a replica batch or a seed. For refusals `item` is the
/// sequence of the first item refused (0 for a seed).
struct replica_ack {
  uint32_t slice = 0;
  ack_code code = ack_code::ok;
  uint64_t epoch = 0;
  uint64_t seq = 0;
  uint64_t item = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replica_ack& x) {
  return f(x.slice, x.code, x.epoch, x.seq, x.item);
}

void encode_acks(const std::vector<replica_ack>& xs, std::string& out);
bool decode_acks(std::string_view bytes, std::vector<replica_ack>& xs);

/// A follower's answer to a replica batch: one ack per slice, as one compact block.
struct replica_acks {
  std::vector<replica_ack> xs;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replica_acks& x) {
  return series::compact::inspect_block(
    f, [&](std::string& out) { encode_acks(x.xs, out); },
    [&](std::string_view in) { return decode_acks(in, x.xs); },
    [&] { return f(x.xs); });
}

} // namespace tether::replication
