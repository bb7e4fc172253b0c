#include "prometheus/remote_write.hpp"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>

#include <google/protobuf/arena.h>
#include <snappy.h>

#include "prometheus/remote.pb.h"
#include "prometheus/text.hpp"

namespace tether::prom {

static_assert(static_cast<int>(metric_type::counter)
              == remote::MetricMetadata::COUNTER);
static_assert(static_cast<int>(metric_type::gauge_histogram)
              == remote::MetricMetadata::GAUGEHISTOGRAM);
static_assert(static_cast<int>(metric_type::stateset)
              == remote::MetricMetadata::STATESET);

namespace {

/// Largest message the protobuf runtime parses or serializes.
constexpr size_t protobuf_limit = INT_MAX;
/// The most a snappy body can expand per byte: a 3-byte copy element yields 64 bytes
/// (21.3x); 22 with the length header.
constexpr size_t max_snappy_expansion = 22;

constexpr uint64_t stale_marker_bits = 0x7ff0000000000002ull;

bool by_name(const label& x, const label& y) noexcept {
  return x.name < y.name;
}

bool same_name(const label& x, const label& y) noexcept {
  return x.name == y.name;
}

bool by_timestamp(const sample& x, const sample& y) noexcept {
  return x.timestamp_ms < y.timestamp_ms;
}

/// At most 64 bytes of `text` for an error message, cut at a character boundary.
std::string clip(std::string_view text) {
  constexpr size_t max = 64;
  if (text.size() <= max)
    return std::string{text};
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80)
    --n;
  std::string out{text.substr(0, n)};
  out += "...";
  return out;
}

std::string where(size_t index) {
  return "series " + std::to_string(index) + ": ";
}

metric_type to_metric_type(int wire) noexcept {
  if (wire < 0 || wire > static_cast<int>(metric_type::stateset))
    return metric_type::unknown;
  return static_cast<metric_type>(wire);
}

std::string_view view(const std::string& text) noexcept {
  return {text.data(), text.size()};
}

/// Counts of a serialized WriteRequest, taken without parsing it.
struct request_counts {
  size_t series = 0;
  size_t samples = 0;
  size_t max_labels = 0; ///< most labels of one series
  size_t histograms = 0; ///< native histograms (TimeSeries field 4)
};

/// A forward-only reader of protobuf wire format, enough to count repeated fields.
class wire_scanner {
public:
  explicit wire_scanner(std::string_view bytes)
    : p_(reinterpret_cast<const unsigned char*>(bytes.data())),
      end_(p_ + bytes.size()) {
  }

  bool done() const noexcept {
    return p_ == end_;
  }

  /// Reads the next field's number and wire type; for length-delimited fields
  /// `payload` views the contents, other fields are skipped.
  bool next(uint64_t& number, std::string_view& payload) {
    uint64_t tag = 0;
    if (!varint(tag))
      return false;
    number = tag >> 3;
    payload = {};
    switch (tag & 7) {
      case 0:
        return varint(tag);
      case 1:
        return advance(8);
      case 5:
        return advance(4);
      case 2: {
        uint64_t len = 0;
        if (!varint(len) || len > static_cast<uint64_t>(end_ - p_))
          return false;
        payload = {reinterpret_cast<const char*>(p_), static_cast<size_t>(len)};
        p_ += len;
        return true;
      }
      default:
        return false; // groups: never part of a WriteRequest
    }
  }

private:
  bool varint(uint64_t& out) {
    out = 0;
    for (int shift = 0; shift < 64 && p_ != end_; shift += 7) {
      auto b = *p_++;
      out |= uint64_t{b & 0x7Fu} << shift;
      if ((b & 0x80) == 0)
        return true;
    }
    return false;
  }

  bool advance(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n)
      return false;
    p_ += n;
    return true;
  }

  const unsigned char* p_;
  const unsigned char* end_;
};

/// Counts series, samples and labels of a serialized WriteRequest in linear time.
/// Returns false when the bytes are not well-formed wire format.
bool count_request(std::string_view bytes, request_counts& out) {
  wire_scanner top{bytes};
  uint64_t number = 0;
  std::string_view series;
  while (!top.done()) {
    if (!top.next(number, series))
      return false;
    if (number != 1)
      continue;
    ++out.series;
    wire_scanner inner{series};
    std::string_view ignored;
    size_t labels = 0;
    while (!inner.done()) {
      if (!inner.next(number, ignored))
        return false;
      labels += number == 1 ? 1 : 0;
      out.samples += number == 2 ? 1 : 0;
      out.histograms += number == 4 ? 1 : 0;
    }
    out.max_labels = std::max(out.max_labels, labels);
  }
  return true;
}

/// Decompressed bytes a decoder keeps between requests.
constexpr size_t retained_uncompressed_bytes = 1 << 20;

} // namespace

std::string_view to_string_view(metric_type type) noexcept {
  switch (type) {
    case metric_type::unknown:
      return "unknown";
    case metric_type::counter:
      return "counter";
    case metric_type::gauge:
      return "gauge";
    case metric_type::histogram:
      return "histogram";
    case metric_type::gauge_histogram:
      return "gauge_histogram";
    case metric_type::summary:
      return "summary";
    case metric_type::info:
      return "info";
    case metric_type::stateset:
      return "stateset";
  }
  return "unknown";
}

bool is_stale_marker(double value) noexcept {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits == stale_marker_bits;
}

double stale_marker() noexcept {
  double value;
  std::memcpy(&value, &stale_marker_bits, sizeof(value));
  return value;
}

// -- write_request_view ------------------------------------------------------------

const family_metadata*
write_request_view::find_metadata(std::string_view family) const noexcept {
  auto i = std::lower_bound(metadata.begin(), metadata.end(), family,
                            [](const family_metadata& x, std::string_view y) {
                              return x.family < y;
                            });
  if (i == metadata.end() || i->family != family)
    return nullptr;
  return &*i;
}

const family_metadata* write_request_view::metadata_for_series(
  std::string_view series_name) const noexcept {
  if (auto* exact = find_metadata(series_name))
    return exact;
  for (std::string_view suffix : {"_bucket", "_sum", "_count", "_total"}) {
    if (series_name.size() > suffix.size()
        && series_name.substr(series_name.size() - suffix.size()) == suffix)
      return find_metadata(
        series_name.substr(0, series_name.size() - suffix.size()));
  }
  return nullptr;
}

// -- write_decoder -----------------------------------------------------------------

write_decoder::write_decoder(decode_options options)
  : options_(options), arena_(std::make_unique<google::protobuf::Arena>()) {
}

write_decoder::~write_decoder() = default;

prom::error write_decoder::fail(errc code, std::string message) {
  view_.series.clear();
  view_.metadata.clear();
  return {code, std::move(message)};
}

decode_result write_decoder::decode(std::string_view body) {
  view_.series.clear();
  view_.metadata.clear();
  arena_->Reset(); // the previous request's memory goes back now
  size_t size = 0;
  if (!snappy::GetUncompressedLength(body.data(), body.size(), &size))
    return {fail(errc::bad_compression,
                 "body is not snappy-compressed (block format)"),
            nullptr};
  auto limit = std::min(options_.max_uncompressed_bytes, protobuf_limit);
  if (size > limit)
    return {fail(errc::too_large, "uncompressed body of " + std::to_string(size)
                                    + " bytes exceeds the limit of "
                                    + std::to_string(limit) + " bytes"),
            nullptr};
  // A snappy element expands at most 64 bytes from 3 (a copy with a 2-byte offset):
  // a header that claims more than that is a lie, refused before anything is
  // allocated for it (a 6-byte body must not cost 32 MiB).
  if (size / max_snappy_expansion > body.size())
    return {fail(errc::bad_compression,
                 "body claims " + std::to_string(size) + " uncompressed bytes, more than "
                   + std::to_string(body.size()) + " bytes of snappy data can hold"),
            nullptr};
  uncompressed_.resize(size);
  if (!snappy::RawUncompress(body.data(), body.size(), uncompressed_.data()))
    return {fail(errc::bad_compression, "body is corrupt snappy data"), nullptr};
  auto result = parse(size);
  if (uncompressed_.capacity() > retained_uncompressed_bytes)
    std::string{}.swap(uncompressed_);
  return result;
}

decode_result write_decoder::parse(size_t size) {
  request_counts counts;
  if (!count_request({uncompressed_.data(), size}, counts))
    return {fail(errc::bad_protobuf,
                 "body is not a Prometheus remote-write WriteRequest"),
            nullptr};
  if (counts.histograms > 0)
    return {fail(errc::native_histograms,
                 std::to_string(counts.histograms)
                   + " native histogram samples: this receiver takes float samples "
                     "only (classic histograms as _bucket, _sum and _count series); "
                     "set send_native_histograms: false in remote_write"),
            nullptr};
  if (counts.series > options_.max_series)
    return {fail(errc::too_many_series,
                 std::to_string(counts.series) + " series exceed the limit of "
                   + std::to_string(options_.max_series) + " per request"),
            nullptr};
  if (counts.samples > options_.max_samples)
    return {fail(errc::too_many_samples,
                 std::to_string(counts.samples) + " samples exceed the limit of "
                   + std::to_string(options_.max_samples) + " per request"),
            nullptr};
  if (counts.max_labels > options_.max_labels_per_series)
    return {fail(errc::too_many_labels,
                 "a series has " + std::to_string(counts.max_labels)
                   + " labels, above the limit of "
                   + std::to_string(options_.max_labels_per_series)),
            nullptr};
  auto& request
    = *google::protobuf::Arena::CreateMessage<remote::WriteRequest>(arena_.get());
  if (!request.ParseFromArray(uncompressed_.data(), static_cast<int>(size)))
    return {fail(errc::bad_protobuf,
                 "body is not a Prometheus remote-write WriteRequest"),
            nullptr};
  // Reserve everything up front: the views below point into these vectors.
  size_t label_count = 0;
  size_t sample_count = 0;
  for (auto& ts : request.timeseries()) {
    label_count += static_cast<size_t>(ts.labels_size());
    sample_count += static_cast<size_t>(ts.samples_size());
  }
  labels_.clear();
  labels_.reserve(label_count);
  samples_.clear();
  samples_.reserve(sample_count);
  view_.series.clear();
  view_.series.reserve(static_cast<size_t>(request.timeseries_size()));
  view_.metadata.clear();
  view_.metadata.reserve(static_cast<size_t>(request.metadata_size()));
  for (int i = 0; i < request.timeseries_size(); ++i) {
    auto index = static_cast<size_t>(i);
    auto& ts = request.timeseries(i);
    auto first = labels_.size();
    std::string_view name;
    bool has_name = false;
    for (auto& l : ts.labels()) {
      auto lname = view(l.name());
      auto lvalue = view(l.value());
      if (lname.empty())
        return {fail(errc::empty_label_name,
                     where(index) + "a label has an empty name"),
                nullptr};
      if (!internal::valid_utf8(lname) || !internal::valid_utf8(lvalue))
        return {fail(errc::invalid_utf8,
                     where(index) + "a label name or value is not UTF-8"),
                nullptr};
      if (lname == metric_name_label) {
        if (has_name)
          return {fail(errc::duplicate_label,
                       where(index) + "label \"__name__\" occurs twice"),
                  nullptr};
        has_name = true;
        name = lvalue;
        continue;
      }
      labels_.push_back({lname, lvalue});
    }
    if (name.empty())
      return {fail(errc::missing_name,
                   where(index)
                     + (has_name ? "label \"__name__\" is empty"
                                 : "no \"__name__\" label")),
              nullptr};
    auto begin = labels_.begin() + static_cast<std::ptrdiff_t>(first);
    std::sort(begin, labels_.end(), by_name);
    if (auto dup = std::adjacent_find(begin, labels_.end(), same_name);
        dup != labels_.end())
      return {fail(errc::duplicate_label, where(index) + "label \""
                                            + clip(dup->name)
                                            + "\" occurs twice"),
              nullptr};
    labels_.erase(std::remove_if(begin, labels_.end(),
                                 [](const label& x) { return x.value.empty(); }),
                  labels_.end());
    auto first_sample = samples_.size();
    for (auto& s : ts.samples())
      samples_.push_back({s.value(), s.timestamp()});
    view_.series.push_back(
      {name, {labels_.data() + first, labels_.size() - first},
       {samples_.data() + first_sample, samples_.size() - first_sample}});
  }
  for (int i = 0; i < request.metadata_size(); ++i) {
    auto& md = request.metadata(i);
    auto family = view(md.metric_family_name());
    auto help = view(md.help());
    auto unit = view(md.unit());
    if (!internal::valid_utf8(family) || !internal::valid_utf8(help)
        || !internal::valid_utf8(unit))
      return {fail(errc::invalid_utf8, "metadata " + std::to_string(i)
                                         + ": text is not UTF-8"),
              nullptr};
    view_.metadata.push_back(
      {family, to_metric_type(static_cast<int>(md.type())), help, unit});
  }
  std::stable_sort(view_.metadata.begin(), view_.metadata.end(),
                   [](const family_metadata& x, const family_metadata& y) {
                     return x.family < y.family;
                   });
  return {{}, &view_};
}

decode_result decode_write_request(std::string_view body,
                                   write_decoder& decoder) {
  return decoder.decode(body);
}

// -- write_encoder -----------------------------------------------------------------

write_encoder::write_encoder()
  : message_(std::make_unique<remote::WriteRequest>()) {
}

write_encoder::~write_encoder() = default;

encode_result write_encoder::encode(array_view<series_view> series,
                                    array_view<family_metadata> metadata,
                                    std::string& body) {
  auto failed = [](errc code, std::string message) {
    return encode_result{{code, std::move(message)}, {}};
  };
  auto& request = *message_;
  request.Clear();
  for (size_t index = 0; index < series.size(); ++index) {
    auto& s = series[index];
    if (s.name.empty())
      return failed(errc::missing_name, where(index) + "the name is empty");
    if (!internal::valid_utf8(s.name))
      return failed(errc::invalid_utf8, where(index) + "the name is not UTF-8");
    labels_.assign(s.labels.begin(), s.labels.end());
    for (auto& l : labels_) {
      if (l.name.empty())
        return failed(errc::empty_label_name,
                      where(index) + "a label has an empty name");
      if (l.name == metric_name_label)
        return failed(errc::duplicate_label,
                      where(index)
                        + "label \"__name__\" is given besides the name");
      if (!internal::valid_utf8(l.name) || !internal::valid_utf8(l.value))
        return failed(errc::invalid_utf8,
                      where(index) + "a label name or value is not UTF-8");
    }
    labels_.push_back({metric_name_label, s.name});
    std::sort(labels_.begin(), labels_.end(), by_name);
    if (auto dup = std::adjacent_find(labels_.begin(), labels_.end(), same_name);
        dup != labels_.end())
      return failed(errc::duplicate_label,
                    where(index) + "label \"" + clip(dup->name)
                      + "\" occurs twice");
    auto* ts = request.add_timeseries();
    ts->mutable_labels()->Reserve(static_cast<int>(labels_.size()));
    for (auto& l : labels_) {
      if (l.value.empty())
        continue;
      auto* out = ts->add_labels();
      out->mutable_name()->assign(l.name.data(), l.name.size());
      out->mutable_value()->assign(l.value.data(), l.value.size());
    }
    auto samples = s.samples;
    if (!std::is_sorted(samples.begin(), samples.end(), by_timestamp)) {
      samples_.assign(samples.begin(), samples.end());
      std::stable_sort(samples_.begin(), samples_.end(), by_timestamp);
      samples = samples_;
    }
    ts->mutable_samples()->Reserve(static_cast<int>(samples.size()));
    for (auto& x : samples) {
      auto* out = ts->add_samples();
      out->set_value(x.value);
      out->set_timestamp(x.timestamp_ms);
    }
  }
  for (size_t i = 0; i < metadata.size(); ++i) {
    auto& md = metadata[i];
    if (!internal::valid_utf8(md.family) || !internal::valid_utf8(md.help)
        || !internal::valid_utf8(md.unit))
      return failed(errc::invalid_utf8,
                    "metadata " + std::to_string(i) + ": text is not UTF-8");
    auto* out = request.add_metadata();
    auto type = to_metric_type(static_cast<int>(md.type));
    out->set_type(static_cast<remote::MetricMetadata::MetricType>(type));
    out->mutable_metric_family_name()->assign(md.family.data(),
                                              md.family.size());
    out->mutable_help()->assign(md.help.data(), md.help.size());
    out->mutable_unit()->assign(md.unit.data(), md.unit.size());
  }
  auto size = request.ByteSizeLong();
  if (size > protobuf_limit)
    return failed(errc::too_large, "request of " + std::to_string(size)
                                     + " bytes exceeds what protobuf encodes");
  serialized_.clear();
  if (!request.SerializeToString(&serialized_))
    return failed(errc::bad_protobuf, "request could not be serialized");
  snappy::Compress(serialized_.data(), serialized_.size(), &body);
  return {{}, remote_write_headers};
}

encode_result encode_write_request(array_view<series_view> series,
                                   array_view<family_metadata> metadata,
                                   write_encoder& encoder, std::string& body) {
  return encoder.encode(series, metadata, body);
}

// -- media type ---------------------------------------------------------------------

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool equal_fold(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i]))
        != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

} // namespace

prom::error check_media_type(std::string_view content_type,
                             std::string_view content_encoding) {
  auto encoding = trim(content_encoding);
  if (!encoding.empty() && !equal_fold(encoding, "snappy"))
    return {errc::unsupported_media_type,
            "Content-Encoding " + std::string{encoding}
              + " is not supported; remote write 1.0 bodies are snappy"};
  if (trim(content_type).empty())
    return {};
  auto semi = content_type.find(';');
  auto type = trim(content_type.substr(0, semi));
  bool ok = equal_fold(type, "application/x-protobuf");
  for (auto rest = semi == std::string_view::npos ? std::string_view{}
                                                  : content_type.substr(semi + 1);
       ok && !rest.empty();) {
    auto next = rest.find(';');
    auto param = trim(rest.substr(0, next));
    auto eq = param.find('=');
    if (eq != std::string_view::npos && equal_fold(trim(param.substr(0, eq)), "proto"))
      ok = trim(param.substr(eq + 1)) == "prometheus.WriteRequest";
    rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next + 1);
  }
  if (ok)
    return {};
  return {errc::unsupported_media_type,
          "Content-Type " + std::string{content_type}
            + " is not supported; this receiver takes remote write 1.0 "
              "(application/x-protobuf, proto=prometheus.WriteRequest)"};
}

} // namespace tether::prom
