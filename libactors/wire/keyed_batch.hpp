#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "keys/series_key.hpp"
#include "tether/errc.hpp"
#include "tether/options.hpp"
#include "tether/types.hpp"

namespace tether::v1 {
class Write;
}

namespace tether::rules {
class rule_set;
}

namespace tether::prom {
struct write_request_view;
}

namespace tether::wire {

struct write_view;

/// One validated sample with its canonical output key, hash and slice. The key text
/// lives in the owning batch's arena.
struct keyed_sample {
  uint64_t hash = 0;       ///< key_hash of the output key; indexes rely on it
  uint64_t input_hash = 0; ///< key_hash of the input key (before rules)
  uint32_t key_offset = 0;
  uint32_t key_size = 0;
  uint32_t slice = 0;
  uint32_t window_ms = 0;  ///< window length of the rule that shaped the key
  uint32_t rule = 0;       ///< 1 + index of that rule, 0 = no rule matched
  tether::kind kind = kind::unspecified;
  counter_mode mode = counter_mode::delta;
  double value = 0;
  int64_t timestamp_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, keyed_sample& x) {
  return f(x.hash, x.input_hash, x.key_offset, x.key_size, x.slice, x.window_ms,
           x.rule, x.kind, x.mode, x.value, x.timestamp_ms);
}

/// A write batch after validation and keying: what the router splits by slice.
/// All key text sits in one arena so that a batch costs a handful of allocations,
/// not one per sample.
struct keyed_batch {
  std::string producer;
  uint64_t sequence = 0;
  std::string keys;
  std::vector<keyed_sample> samples;

  std::string_view key(const keyed_sample& s) const {
    return {keys.data() + s.key_offset, s.key_size};
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, keyed_batch& x) {
  return f(x.producer, x.sequence, x.keys, x.samples);
}

/// Why a batch was rejected. `code == errc::none` means it was accepted.
struct batch_error {
  errc code = errc::none;
  std::string message;
  int32_t index = -1; ///< offending sample, -1 for the batch as a whole

  explicit operator bool() const noexcept {
    return code != errc::none;
  }
};

/// Validates write batches and turns them into keyed batches. Keeps scratch space
/// between calls, so one keyer per session allocates nothing per sample.
/// Not thread-safe: one keyer per thread or session.
class batch_keyer {
public:
  batch_keyer(const tether::limits& lim, uint32_t slice_count)
    : limits_(lim), slice_count_(slice_count) {
  }

  /// Validates a decoded protobuf write and applies `rules` (the first matching rule
  /// shapes each sample's output key). On success fills `out` (producer is left as
  /// it is) and returns an empty error; on failure `out` is unspecified.
  batch_error key(const v1::Write& write, int64_t now_ms, const rules::rule_set& rules,
                  keyed_batch& out);

  /// Same for a write read in place from its frame (write_view.hpp): the gateway's
  /// path for binary writes.
  batch_error key(const write_view& write, int64_t now_ms, const rules::rule_set& rules,
                  keyed_batch& out);

  /// Same for samples handed over by an embedding application.
  batch_error key(uint64_t sequence, const std::vector<sample>& samples,
                  int64_t now_ms, const rules::rule_set& rules, keyed_batch& out);

  /// Same for a Prometheus remote-write request, flattened to one sample per
  /// (series, sample). Kinds come from the request's metadata and name conventions
  /// (docs/aggregation.md); counters are cumulative. Stale markers are skipped and
  /// counted in `stale_markers`.
  batch_error key(uint64_t sequence, const prom::write_request_view& request,
                  int64_t now_ms, const rules::rule_set& rules, keyed_batch& out,
                  size_t& stale_markers);

private:
  template <class Source>
  batch_error run(uint64_t sequence, const Source& src, int64_t now_ms,
                  const rules::rule_set& rules, keyed_batch& out);

  tether::limits limits_;
  uint32_t slice_count_;
  std::vector<keys::label_ref> scratch_;
  std::vector<keys::label_ref> kept_;
  std::string input_key_;
};

} // namespace tether::wire
