#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tether/errc.hpp"
#include "tether/types.hpp"
#include "wire/keyed_batch.hpp"

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

  std::string_view key(const wire::keyed_sample& s) const {
    return {keys.data() + s.key_offset, s.key_size};
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shard_write& x) {
  return f(x.producer, x.sequence, x.keys, x.samples, x.ranges);
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

/// An output key as routed to its shard for a read or a subscription.
struct key_route {
  std::string key;
  uint32_t slice = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, key_route& x) {
  return f(x.key, x.slice);
}

/// One slice as a shard reports it for /metrics.
struct slice_stat {
  uint32_t slice = 0;
  uint64_t epoch = 0;
  uint64_t series = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, slice_stat& x) {
  return f(x.slice, x.epoch, x.series);
}

/// What a shard reports for /metrics: every series with a closed window, and its
/// slices with their series counts.
struct shard_scrape {
  std::vector<series_view> series;
  std::vector<slice_stat> slices;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shard_scrape& x) {
  return f(x.series, x.slices);
}

} // namespace tether::series
