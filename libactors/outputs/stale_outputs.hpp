#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tether/types.hpp"

namespace tether::outputs {

/// The series a consumer exported whose last window ended more than `staleness_ms`
/// ago: their inputs are gone, so their outputs should end with a staleness marker
/// rather than linger (Prometheus keeps showing a series for 5 minutes after its
/// last sample unless a marker ends it).
///
/// Keeps the latest window of every series it was shown until that series goes
/// stale (one view per exported series). Not thread-safe.
class stale_outputs {
public:
  explicit stale_outputs(int64_t staleness_ms) : staleness_ms_(staleness_ms) {
  }

  /// Records the windows just exported.
  void seen(const std::vector<series_view>& views);

  /// Removes and returns the series whose last window ended before
  /// `now_ms - staleness_ms`, each with that last window.
  std::vector<series_view> expire(int64_t now_ms);

  size_t size() const noexcept {
    return latest_.size();
  }

private:
  int64_t staleness_ms_;
  std::map<std::string, series_view> latest_;
};

} // namespace tether::outputs
