#include "id_subset.hpp"

#include <cmath>

namespace tether::tools::load {

// -- id_subset -------------------------------------------------------------------------

std::shared_ptr<const id_subset> id_subset::cycle(std::vector<std::uint64_t> ids,
                                                  double share) {
  auto out = std::make_shared<id_subset>();
  out->ids_ = std::move(ids);
  out->share_ = share;
  return out;
}

std::shared_ptr<const id_subset> id_subset::zipf(std::vector<std::uint64_t> ids, double s,
                                                 double share) {
  auto out = std::make_shared<id_subset>();
  out->share_ = share;
  auto n = ids.size();
  std::vector<double> scaled(n);
  double total = 0;
  for (size_t i = 0; i < n; ++i)
    total += scaled[i] = std::pow(static_cast<double>(ids[i] + 1), -s);
  for (auto& w : scaled)
    w *= static_cast<double>(n) / total;
  // Walker's alias method: every column holds at most two ids.
  out->keep_.assign(n, 1.0);
  out->alias_.resize(n);
  std::vector<std::uint32_t> small, large;
  for (size_t i = 0; i < n; ++i) {
    out->alias_[i] = static_cast<std::uint32_t>(i);
    (scaled[i] < 1.0 ? small : large).push_back(static_cast<std::uint32_t>(i));
  }
  while (!small.empty() && !large.empty()) {
    auto lo = small.back();
    small.pop_back();
    auto hi = large.back();
    out->keep_[lo] = scaled[lo];
    out->alias_[lo] = hi;
    scaled[hi] -= 1.0 - scaled[lo];
    if (scaled[hi] < 1.0) {
      large.pop_back();
      small.push_back(hi);
    }
  }
  out->ids_ = std::move(ids);
  return out;
}

} // namespace tether::tools::load
