#pragma once

// Test helpers shared by the shard component tests (shard_handoff.test.cpp,
// shard_replication.test.cpp): a small slice space, keys that fall on a given slice,
// and an actor that logs the windows it receives.

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <caf/event_based_actor.hpp>

#include "keys/slicing.hpp"
#include "tether/tether.hpp"

namespace tether::series::testing {

constexpr uint32_t slices = 8;
constexpr int64_t window_ms = 1000;
constexpr int64_t lateness_ms = 500;

/// The first `n` keys "k<i>" that fall on slice `s`.
inline std::vector<std::string> keys_on(uint32_t s, size_t n) {
  std::vector<std::string> out;
  for (int i = 0; out.size() < n; ++i) {
    auto key = "k" + std::to_string(i);
    if (keys::slice_of(keys::key_hash(key), slices) == s)
      out.push_back(key);
  }
  return out;
}

/// Every window a subscriber or exporter received, in order.
struct window_log {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<series_view> views;

  /// Waits (at most 5 s) until `pred(views)` holds.
  template <class Pred>
  bool wait(Pred pred) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, std::chrono::seconds(5), [&] { return pred(views); });
  }

  /// How often each (key, window start) arrived.
  std::map<std::pair<std::string, int64_t>, int> counts() {
    std::lock_guard<std::mutex> guard{mtx};
    std::map<std::pair<std::string, int64_t>, int> out;
    for (auto& v : views)
      ++out[{v.key, v.window.start_ms}];
    return out;
  }

  size_t size() {
    std::lock_guard<std::mutex> guard{mtx};
    return views.size();
  }
};

/// Appends every window it receives to `log`; answers an int with itself once the
/// windows sent before it are logged.
inline caf::behavior collector(caf::event_based_actor*, std::shared_ptr<window_log> log) {
  return {
    [log](window_atom, std::vector<series_view>& vs) {
      std::lock_guard<std::mutex> guard{log->mtx};
      log->views.insert(log->views.end(), vs.begin(), vs.end());
      log->cv.notify_all();
    },
    [](int x) { return x; },
  };
}

} // namespace tether::series::testing
