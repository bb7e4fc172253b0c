#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <caf/deserializer.hpp>
#include <caf/error.hpp>
#include <caf/sec.hpp>
#include <caf/serializer.hpp>

#include "series/compact.hpp"
#include "tether/errc.hpp"
#include "wire/keyed_batch.hpp"

// The write as a slice applies it: the part of a batch that goes to one shard, and
// what applying it did. Pure data; the shard actor sends it (shard/messages.hpp), the
// replication stream carries it to followers (replication/messages.hpp).

namespace tether::series {

/// The samples of one slice inside a shard write: `samples[begin, end)`.
struct slice_range {
  uint32_t slice = 0;
  uint64_t epoch = 0; ///< the epoch the router saw; a mismatch is refused
  uint32_t begin = 0;
  uint32_t end = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, slice_range& x) {
  return f(x.slice, x.epoch, x.begin, x.end);
}

/// The part of one write batch that goes to one shard: one message per shard per
/// batch, holding every slice range the shard hosts. Key offsets refer to `keys`.
struct shard_write {
  std::string producer;
  uint64_t sequence = 0;
  std::string keys;
  std::vector<wire::keyed_sample> samples; ///< grouped by slice, see `ranges`
  std::vector<slice_range> ranges;
  /// Set by a requester on another node than the shard (non-zero, its own number
  /// for the write): a follower on the requester's node may answer it
  /// (replication/messages.hpp, `near_ack`). Zero: only the shard answers.
  uint64_t near_token = 0;

  std::string_view key(const wire::keyed_sample& s) const {
    return {keys.data() + s.key_offset, s.key_size};
  }
};

/// A vector of trivially copyable values as CAF's binary serializers see it: a count,
/// then the values' memory as one block, not one field (with its own error value) per
/// member. Samples of a write, its slice ranges, a batch's commit notes and a
/// follower's acks cross nodes this way; it halves the serialization cost of a write
/// between nodes. The nodes of a cluster therefore share their byte order and the
/// structs' layout (the same build on the same architecture). A count above
/// `raw_vector_limit` is refused before anything is allocated.
template <class T>
struct raw_vector {
  std::vector<T>* xs;
};

constexpr size_t raw_vector_limit = size_t{1} << 24;

template <class Inspector, class T>
typename Inspector::result_type inspect(Inspector& f, raw_vector<T>& b) {
  static_assert(std::is_trivially_copyable<T>::value);
  if constexpr (std::is_base_of<caf::serializer, Inspector>::value) {
    auto n = b.xs->size();
    return caf::error::eval([&] { return f.begin_sequence(n); },
                            [&] {
                              return n > 0 ? f.apply_raw(n * sizeof(T), b.xs->data())
                                           : caf::error{};
                            },
                            [&] { return f.end_sequence(); });
  } else if constexpr (std::is_base_of<caf::deserializer, Inspector>::value) {
    size_t n = 0;
    return caf::error::eval([&] { return f.begin_sequence(n); },
                            [&] {
                              if (n > raw_vector_limit)
                                return caf::make_error(caf::sec::invalid_argument,
                                                       "raw vector: count too large");
                              b.xs->resize(n);
                              return n > 0 ? f.apply_raw(n * sizeof(T), b.xs->data())
                                           : caf::error{};
                            },
                            [&] { return f.end_sequence(); });
  } else {
    return f(*b.xs);
  }
}

/// The compact byte forms (compact.hpp) of a write's samples and ranges, as they
/// cross nodes. The decoders return false for malformed bytes.
void encode_samples(const std::vector<wire::keyed_sample>& xs, std::string& out);
bool decode_samples(std::string_view bytes, std::vector<wire::keyed_sample>& xs);
void encode_ranges(const std::vector<slice_range>& xs, std::string& out);
bool decode_ranges(std::string_view bytes, std::vector<slice_range>& xs);

/// A write's samples in their compact form for CAF's serializers.
struct sample_block {
  std::vector<wire::keyed_sample>* xs;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sample_block& b) {
  return compact::inspect_block(
    f, [&](std::string& out) { encode_samples(*b.xs, out); },
    [&](std::string_view in) { return decode_samples(in, *b.xs); },
    [&] { return f(*b.xs); });
}

/// A write's slice ranges in their compact form for CAF's serializers.
struct range_block {
  std::vector<slice_range>* xs;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, range_block& b) {
  return compact::inspect_block(
    f, [&](std::string& out) { encode_ranges(*b.xs, out); },
    [&](std::string_view in) { return decode_ranges(in, *b.xs); },
    [&] { return f(*b.xs); });
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shard_write& x) {
  sample_block samples{&x.samples};
  range_block ranges{&x.ranges};
  return f(x.producer, x.sequence, x.keys, samples, ranges, x.near_token);
}

/// What a shard did with a shard write. Ranges are independent: a failed range does
/// not undo the others, and a retry completes the failed ones (dedup per slice).
struct shard_write_result {
  uint32_t applied = 0;          ///< samples newly applied
  uint32_t late = 0;             ///< samples dropped: their window had closed
  uint32_t duplicate_ranges = 0; ///< ranges that had been applied before
  errc code = errc::none;        ///< first failure, if any
  std::string message;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shard_write_result& x) {
  return f(x.applied, x.late, x.duplicate_ranges, x.code, x.message);
}

} // namespace tether::series
