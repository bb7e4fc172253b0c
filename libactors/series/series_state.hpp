#pragma once

#include <cstdint>

#include "tether/types.hpp"
#include "wire/keyed_batch.hpp"

namespace tether::series {

/// The aggregation state of one output series. Plain data: the slice that hosts it
/// decides when to apply samples; replicas apply the same samples in the same order
/// and reach the same state.
struct series_state {
  tether::kind kind = kind::unspecified;
  double total = 0;      ///< counters: running total, never decreasing
  double last = 0;       ///< last value (gauge, histogram) or last increment (counter)
  double min = 0;
  double max = 0;
  double sum = 0;
  uint64_t count = 0;    ///< samples applied
  int64_t updated_ms = 0;
  double last_input = 0; ///< cumulative counters: the input's last reported total
  bool has_input = false;

  /// Applies one validated sample of the same kind.
  void apply(const wire::keyed_sample& s) noexcept;

  /// Copies the state into a view (location fields are left to the caller).
  void fill(series_view& view) const;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, series_state& x) {
  return f(x.kind, x.total, x.last, x.min, x.max, x.sum, x.count, x.updated_ms,
           x.last_input, x.has_input);
}

} // namespace tether::series
