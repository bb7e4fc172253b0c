#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "prometheus/errc.hpp"
#include "prometheus/fwd.hpp"
#include "prometheus/types.hpp"

namespace tether::prom {

/// `Content-Type` of the text exposition format 0.0.4.
inline constexpr std::string_view exposition_content_type
  = "text/plain; version=0.0.4; charset=utf-8";

/// The `# TYPE` of a family in the text exposition format.
enum class family_type : uint8_t { counter, gauge, histogram, summary, untyped };

/// The word `# TYPE` uses for a type, e.g. "histogram".
std::string_view to_string_view(family_type type) noexcept;

/// One histogram bucket: the observations above the previous bucket's bound and at
/// most `upper_bound`. Counts are per bucket, not cumulative; the writer adds them up.
struct bucket {
  double upper_bound = 0;
  uint64_t count = 0;
};

/// One summary quantile: `quantile` in [0, 1] and the value observed at it.
struct quantile_value {
  double quantile = 0;
  double value = 0;
};

/// One labelled point of a family. Which fields are read depends on the family type:
/// counters, gauges and untyped families use `value`; histograms `buckets`, `sum`
/// and `count`; summaries `quantiles`, `sum` and `count`.
struct point {
  /// Written in the order given. Labels with empty values are left out (Prometheus
  /// treats them as absent). Names must not repeat, start with `__`, or be the
  /// `le` (histograms) / `quantile` (summaries) label the writer adds itself.
  std::vector<label> labels;

  double value = 0;

  /// Strictly ascending finite bounds; a last bucket with bound +Inf is allowed and
  /// then must make the buckets add up to `count`. Observations above the last
  /// finite bound are `count` minus the bucket total; the writer always ends with
  /// `le="+Inf"` equal to `count`.
  std::vector<bucket> buckets;

  /// Strictly ascending quantiles.
  std::vector<quantile_value> quantiles;

  double sum = 0;
  uint64_t count = 0;

  /// Unix milliseconds appended to every line of the point; none if empty.
  std::optional<int64_t> timestamp_ms;
};

/// A metric family: every point of one metric name with its help text and type.
struct family {
  /// Used verbatim in `# HELP`, `# TYPE` and the sample lines; histograms and
  /// summaries add `_bucket`, `_sum` and `_count`. The writer never renames: a
  /// counter's name should end in `_total`, as the format's conventions (and
  /// `promtool check metrics`) expect, and the caller passes it that way.
  std::string_view name;

  /// Written as `# HELP` (escaped) when not empty.
  std::string_view help;

  family_type type = family_type::untyped;

  /// Written in the order given; no two may have the same label set (compared
  /// regardless of label order and ignoring labels with empty values).
  std::vector<point> points;
};

/// Appends the text exposition (format 0.0.4) of `families` to `out`, families and
/// points in the order given, so equal input yields equal bytes. A family without
/// points is left out entirely.
///
/// Input that would produce an exposition Prometheus rejects or misreads is refused
/// with an error naming the family and point, and `out` is left as it was: invalid
/// metric or label names, text that is not UTF-8, a family name used twice, a label
/// set repeated within a family, a label name repeated within a point, buckets or
/// quantiles out of order or inconsistent with the count.
///
/// Floats are written as `NaN`, `+Inf`, `-Inf`; integral values below 1e15 in
/// magnitude as plain integers (`1000000`); larger values with an exponent
/// (`1e+15`); all others in the shortest form that reads back exactly (`0.1`,
/// `1.5e-07`). `le` and `quantile` label values are written the same way, so they
/// can differ textually from what Go clients write for the same bound (`1e+06`).
///
/// Stateless and thread-safe.
prom::error write_exposition(array_view<family> families, std::string& out);

/// A float as write_exposition writes it, values and `le`/`quantile` labels alike
/// (`0.9`, `1e+15`, `+Inf`): other outputs (remote write) use it so that a series
/// has the same labels wherever it is read. Thread-safe.
std::string format_value(double value);

} // namespace tether::prom
