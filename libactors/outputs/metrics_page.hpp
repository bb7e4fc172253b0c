#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tether/types.hpp"

namespace tether::outputs {

/// The node's own counters, as exposed next to the aggregates.
struct node_metrics {
  std::string node;
  uint64_t series = 0;
  uint64_t samples_applied = 0;
  uint64_t samples_late = 0;
  uint64_t windows_closed = 0;
  uint32_t primary_slices = 0;
};

/// Renders the `/metrics` page: the latest closed window of every output series in
/// the Prometheus text exposition format, then the node's own metrics. Mapping:
/// - counter `name`: a counter family `name` (with `_total` appended when the name
///   lacks it) whose value is the running total at the window's end, and a gauge
///   `name:rate` (per second over the window; `_total` dropped from the name);
/// - gauge `name`: gauge `name` = last value, gauges `name:min`, `name:max`,
///   `name:sum`, `name:count`, `name:mean` over the window;
/// - histogram `name`: a summary `name` with the window's quantiles, `_sum` and
///   `_count`, and gauges `name:min`, `name:max`.
/// Series whose key does not parse are skipped (keys come from the node, so this
/// does not happen). Returns false and explains in `error` if the exposition writer
/// refuses the input.
bool render_metrics(const std::vector<series_view>& series, const node_metrics& self,
                    std::string& out, std::string& error);

} // namespace tether::outputs
