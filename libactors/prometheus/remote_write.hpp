#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "prometheus/errc.hpp"
#include "prometheus/fwd.hpp"
#include "prometheus/types.hpp"

namespace google::protobuf {
class Arena;
}

namespace tether::prom {

// -- shared types ------------------------------------------------------------------

/// One time series of a remote-write request: the metric name (the `__name__` label),
/// the other labels and the samples. All text and arrays are views.
struct series_view {
  std::string_view name;
  array_view<label> labels;
  array_view<sample> samples;
};

/// A metric family's type as remote-write metadata states it. Values equal the wire
/// enum `MetricMetadata.MetricType`.
enum class metric_type : uint8_t {
  unknown = 0,
  counter = 1,
  gauge = 2,
  histogram = 3,
  gauge_histogram = 4,
  summary = 5,
  info = 6,
  stateset = 7,
};

/// Lower-case name of a type, e.g. "gauge_histogram".
std::string_view to_string_view(metric_type type) noexcept;

/// What a sender says about one metric family. All text is viewed.
struct family_metadata {
  std::string_view family;
  metric_type type = metric_type::unknown;
  std::string_view help;
  std::string_view unit;
};

// -- receiving ---------------------------------------------------------------------

/// A decoded request. Everything it holds views buffers of the decoder that produced
/// it and stays valid until that decoder decodes again or is destroyed.
struct write_request_view {
  /// Every series, in request order. Labels exclude `__name__`, are sorted by name
  /// and omit labels with empty values (Prometheus treats those as absent). Samples
  /// are in request order.
  std::vector<series_view> series;

  /// Metadata entries, sorted by family name; entries for the same family keep their
  /// request order.
  std::vector<family_metadata> metadata;

  /// The first metadata entry of `family`, or nullptr.
  const family_metadata* find_metadata(std::string_view family) const noexcept;

  /// The metadata describing the series named `series_name`: an entry for the name
  /// itself, else one for the name without a `_bucket`, `_sum`, `_count` or `_total`
  /// suffix; nullptr if neither exists.
  const family_metadata* metadata_for_series(
    std::string_view series_name) const noexcept;
};

/// Limits a decoder enforces, with their defaults.
struct decode_options {
  /// Largest uncompressed body accepted, in bytes. Checked against the length the
  /// snappy header announces, before anything is allocated or decompressed.
  /// Values above 2 GiB - 1 (what the protobuf runtime parses) act as that.
  size_t max_uncompressed_bytes = size_t{32} << 20;
  /// Most series in one request.
  size_t max_series = size_t{1} << 20;
  /// Most samples in one request, over all series.
  size_t max_samples = size_t{1} << 22;
  /// Most labels of one series, `__name__` included.
  size_t max_labels_per_series = 1024;
};

/// Outcome of decoding one body: `request` is set exactly when `error` is empty.
struct decode_result {
  prom::error error;
  const write_request_view* request = nullptr;

  bool ok() const noexcept {
    return request != nullptr;
  }
};

/// Decodes remote-write 1.0 request bodies (snappy block format, protobuf
/// `WriteRequest`). Keeps its small index vectors between calls; decompressed bytes
/// beyond 1 MiB are released once parsed.
///
/// Before it allocates anything for the request, it checks the length the snappy
/// header announces, then counts series, samples and labels in one linear pass over
/// the protobuf bytes and refuses a request beyond the counts of `decode_options`.
/// The request is then parsed into an arena that the next call resets, so what one
/// request costs is released when the next one starts or the decoder is destroyed.
///
/// Checks: snappy framing, the size and count limits, no native histograms
/// (`errc::native_histograms`), protobuf syntax, UTF-8 of every label and
/// metadata text, a non-empty `__name__` per series, non-empty and unique label
/// names. It does not check names against Prometheus' character rules (the caller's
/// key validation does), sample order, or value ranges; stale markers (see
/// `is_stale_marker`) pass through as values.
///
/// Not thread-safe: one decoder per thread or session.
class write_decoder {
public:
  explicit write_decoder(decode_options options = {});
  ~write_decoder();

  write_decoder(const write_decoder&) = delete;
  write_decoder& operator=(const write_decoder&) = delete;

  /// Decodes `body`. On success the result points to a view that lives until the
  /// next call; on failure the error says what is wrong and where.
  decode_result decode(std::string_view body);

  const decode_options& options() const noexcept {
    return options_;
  }

private:
  prom::error fail(errc code, std::string message);

  decode_result parse(size_t size);

  decode_options options_;
  std::string uncompressed_;
  std::unique_ptr<google::protobuf::Arena> arena_;
  std::vector<label> labels_;
  std::vector<sample> samples_;
  write_request_view view_;
};

/// Decodes one remote-write request body with `decoder`'s buffers and limits.
decode_result decode_write_request(std::string_view body, write_decoder& decoder);

/// Whether `value` is Prometheus' staleness marker, the NaN with bit pattern
/// 0x7ff0000000000002 that ends a series. Other NaNs are ordinary values.
bool is_stale_marker(double value) noexcept;

/// The staleness marker value.
double stale_marker() noexcept;

// -- sending -----------------------------------------------------------------------

/// An HTTP header name and value.
struct http_header {
  std::string_view name;
  std::string_view value;
};

/// `Content-Encoding` of a remote-write body.
inline constexpr std::string_view remote_write_content_encoding = "snappy";

/// `Content-Type` of a remote-write body.
inline constexpr std::string_view remote_write_content_type = "application/x-protobuf";

/// `X-Prometheus-Remote-Write-Version` of a 1.0 request.
inline constexpr std::string_view remote_write_version = "0.1.0";

/// The headers every remote-write 1.0 request carries besides `User-Agent`, which
/// the specification also requires and which names the sending program (the HTTP
/// client sets it).
inline constexpr http_header remote_write_headers[] = {
  {"Content-Encoding", remote_write_content_encoding},
  {"Content-Type", remote_write_content_type},
  {"X-Prometheus-Remote-Write-Version", remote_write_version},
};

/// Outcome of encoding one request: on success `error` is empty and `headers` lists
/// `remote_write_headers`.
struct encode_result {
  prom::error error;
  array_view<http_header> headers;

  bool ok() const noexcept {
    return !error;
  }
};

/// Encodes remote-write 1.0 request bodies. For each series the labels, `__name__`
/// among them, are written sorted by name in byte order as the specification
/// requires (`__name__` comes first unless a label name starts with an upper-case
/// letter); labels with empty values are left out; samples are written oldest first
/// (a stable sort, skipped when they already are in order).
///
/// Refuses, without touching the output: an empty name, a label with an empty name,
/// a label named `__name__` or any name twice in one series, and text that is not
/// UTF-8. Series with no samples are written as given.
///
/// Keeps its buffers between calls. Not thread-safe: one encoder per thread.
class write_encoder {
public:
  write_encoder();
  ~write_encoder();

  write_encoder(const write_encoder&) = delete;
  write_encoder& operator=(const write_encoder&) = delete;

  /// Replaces `body` with the compressed request for `series` and `metadata`.
  encode_result encode(array_view<series_view> series,
                       array_view<family_metadata> metadata, std::string& body);

private:
  std::unique_ptr<remote::WriteRequest> message_;
  std::string serialized_;
  std::vector<label> labels_;
  std::vector<sample> samples_;
};

/// Encodes one remote-write request body into `body` with `encoder`'s buffers.
encode_result encode_write_request(array_view<series_view> series,
                                   array_view<family_metadata> metadata,
                                   write_encoder& encoder, std::string& body);

/// Whether a request's Content-Type and Content-Encoding are those of remote write
/// 1.0: `application/x-protobuf` with no `proto` parameter or
/// `proto=prometheus.WriteRequest`, and `snappy` (either header may be absent). Any
/// other (a remote-write 2.0 `proto=io.prometheus.write.v2.Request`, another
/// encoding) is `errc::unsupported_media_type`, to be answered 415 as the 2.0
/// specification asks. Thread-safe.
prom::error check_media_type(std::string_view content_type,
                             std::string_view content_encoding);

} // namespace tether::prom
