#include "output_map.hpp"

#include <algorithm>

namespace tether::tools::load {

output_map::output_map(sample_kind kind, std::uint64_t series, series_shape shape, bool fold)
  : kind_(kind),
    shape_(shape),
    fold_(fold),
    metrics_(shape.metrics > 0 ? shape.metrics : 1),
    count_(fold ? shape.folded_outputs(std::max<std::uint64_t>(series, 1))
                : std::max<std::uint64_t>(series, 1)) {
  // nop
}

output_map output_map::of(const load_options& opts) {
  return output_map{opts.kind, opts.series, series_shape{opts.metrics, opts.groups},
                    opts.fold_series};
}

std::string output_map::key(std::uint64_t output) const {
  // Canonical: labels sorted by name, and "group" < "series".
  auto out = metric_name(kind_, shape_.metrics, output);
  bool group = shape_.groups > 0;
  if (fold_ && !group)
    return out;
  out += '{';
  if (group)
    out += "group=\"" + std::to_string(shape_.group_of(output)) + "\"";
  if (!fold_)
    out += std::string{group ? "," : ""} + "series=\"" + std::to_string(output) + "\"";
  out += '}';
  return out;
}

std::vector<std::uint64_t> output_map::spread(std::uint64_t n) const {
  n = std::min(n, count_);
  std::vector<std::uint64_t> out;
  out.reserve(n);
  for (std::uint64_t j = 0; j < n; ++j) {
    // j * count / n without overflow: count < 2^64 and j < n <= count.
    auto value = static_cast<std::uint64_t>(
      (static_cast<unsigned __int128>(j) * count_) / n);
    out.push_back(value);
  }
  return out;
}

} // namespace tether::tools::load
