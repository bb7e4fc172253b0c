#include "prometheus/errc.hpp"

namespace tether::prom {

std::string_view to_string_view(errc code) noexcept {
  switch (code) {
    case errc::none:
      return "none";
    case errc::bad_compression:
      return "bad_compression";
    case errc::too_large:
      return "too_large";
    case errc::bad_protobuf:
      return "bad_protobuf";
    case errc::invalid_utf8:
      return "invalid_utf8";
    case errc::missing_name:
      return "missing_name";
    case errc::empty_label_name:
      return "empty_label_name";
    case errc::duplicate_label:
      return "duplicate_label";
    case errc::invalid_metric_name:
      return "invalid_metric_name";
    case errc::invalid_label_name:
      return "invalid_label_name";
    case errc::duplicate_family:
      return "duplicate_family";
    case errc::duplicate_series:
      return "duplicate_series";
    case errc::invalid_buckets:
      return "invalid_buckets";
    case errc::invalid_quantiles:
      return "invalid_quantiles";
    case errc::too_many_series:
      return "too_many_series";
    case errc::too_many_samples:
      return "too_many_samples";
    case errc::too_many_labels:
      return "too_many_labels";
    case errc::unsupported_media_type:
      return "unsupported_media_type";
    case errc::native_histograms:
      return "native_histograms";
  }
  return "unknown";
}

} // namespace tether::prom
