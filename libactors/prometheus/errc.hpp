#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tether::prom {

/// Why a remote-write body or an exposition could not be produced or read.
enum class errc : uint8_t {
  none = 0,
  /// The body is not a valid snappy block (the format remote write uses, not the
  /// framed stream format).
  bad_compression = 1,
  /// The uncompressed body would exceed the configured limit.
  too_large = 2,
  /// The uncompressed bytes are not a remote-write `WriteRequest`.
  bad_protobuf = 3,
  /// A label name or value, a metric name, help or unit text is not UTF-8.
  invalid_utf8 = 4,
  /// A series has no `__name__` label, or its value is empty.
  missing_name = 5,
  /// A label has an empty name.
  empty_label_name = 6,
  /// A label name occurs twice in one series or point.
  duplicate_label = 7,
  /// A metric name does not match `[a-zA-Z_:][a-zA-Z0-9_:]*`.
  invalid_metric_name = 8,
  /// A label name does not match `[a-zA-Z_][a-zA-Z0-9_]*`, starts with `__`, or is
  /// the `le` / `quantile` label the writer adds itself.
  invalid_label_name = 9,
  /// Two families in one exposition share a name.
  duplicate_family = 10,
  /// Two points of one family have the same label set.
  duplicate_series = 11,
  /// Histogram buckets are not ascending, or hold more observations than the count.
  invalid_buckets = 12,
  /// Summary quantiles are outside [0, 1] or not ascending.
  invalid_quantiles = 13,
  /// A request has more series than the decoder's limit.
  too_many_series = 14,
  /// A request has more samples than the decoder's limit.
  too_many_samples = 15,
  /// A series has more labels than the decoder's limit.
  too_many_labels = 16,
  /// The request's Content-Type or Content-Encoding is not remote write 1.0's
  /// (`application/x-protobuf`, `snappy`): a remote-write 2.0 request, for instance.
  unsupported_media_type = 17,
  /// A series carries native histograms, which the receiver does not take.
  native_histograms = 18,
};

/// Lower-case name of a code, e.g. "bad_compression"; "none" for success.
std::string_view to_string_view(errc code) noexcept;

/// A failure with its explanation. Empty (`code == errc::none`) means success.
struct error {
  errc code = errc::none;
  std::string message;

  explicit operator bool() const noexcept {
    return code != errc::none;
  }
};

} // namespace tether::prom
