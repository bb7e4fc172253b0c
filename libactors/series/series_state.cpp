#include "series/series_state.hpp"

#include <algorithm>

namespace tether::series {

void series_state::apply(const wire::keyed_sample& s) noexcept {
  double v = s.value;
  if (kind == kind::counter) {
    if (s.mode == counter_mode::cumulative) {
      // The first report of an input series is its baseline; a decrease is a reset
      // of the input, whose new value is all increase since.
      double increase = 0;
      if (has_input)
        increase = v >= last_input ? v - last_input : v;
      last_input = v;
      has_input = true;
      v = increase;
    }
    total += v;
  }
  if (count == 0) {
    min = v;
    max = v;
  } else {
    min = std::min(min, v);
    max = std::max(max, v);
  }
  last = v;
  sum += v;
  ++count;
  updated_ms = std::max(updated_ms, s.timestamp_ms);
}

void series_state::fill(series_view& view) const {
  view.found = true;
  view.kind = kind;
  view.total = total;
  view.last = last;
  view.min = min;
  view.max = max;
  view.sum = sum;
  view.count = count;
  view.updated_ms = updated_ms;
}

} // namespace tether::series
