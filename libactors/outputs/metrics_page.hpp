#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tether/types.hpp"

namespace tether::rules {
class rule_set;
}

namespace tether::outputs {

/// The node's own counters, as exposed next to the aggregates.
struct node_metrics {
  std::string node;
  uint64_t series = 0;
  uint64_t samples_applied = 0;
  uint64_t samples_late = 0;
  uint64_t windows_closed = 0;
  uint32_t primary_slices = 0;
  uint64_t batches_acked = 0;
  uint64_t near_answers = 0;
  std::vector<std::pair<std::string, uint64_t>> batches_rejected; ///< reason, count
  std::vector<std::pair<uint32_t, uint64_t>> slice_series; ///< slice, series count
  /// Remote-write export (absent when not configured).
  bool exporting = false;
  uint64_t export_queue_depth = 0;
  uint64_t export_sent = 0;
  uint64_t export_dropped = 0;
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
/// A rule's `outputs` (from `rules`, which may be null) select which of its series'
/// outputs appear.
bool render_metrics(const std::vector<series_view>& series, const node_metrics& self,
                    const rules::rule_set* rules, std::string& out, std::string& error);

/// Encodes the windows in `series` (each view's `window` is a closed window) as one
/// remote-write request body (snappy-compressed protobuf), with the same names and
/// labels as `/metrics`, stamped with each window's end. Returns false and explains
/// in `error` if the encoder refuses the input.
bool encode_windows(const std::vector<series_view>& series,
                    const rules::rule_set* rules, std::string& body, std::string& error);

/// Encodes a staleness marker, stamped `now_ms`, for every output `encode_windows`
/// would write for each series of `series` (same names and labels): the series'
/// inputs are gone and the receiver should stop showing them. Returns false and
/// explains in `error` if the encoder refuses the input.
bool encode_stale_markers(const std::vector<series_view>& series,
                          const rules::rule_set* rules, int64_t now_ms,
                          std::string& body, std::string& error);

} // namespace tether::outputs
