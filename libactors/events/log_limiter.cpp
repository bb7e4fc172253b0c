#include "events/log_limiter.hpp"

#include <algorithm>

namespace tether::events {

bool log_limiter::admit(clock::time_point now, uint64_t& suppressed) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (burst_ == 0 || (count_ == burst_ && now - written_[next_] < period_)) {
    ++dropped_;
    return false;
  }
  written_[next_] = now;
  next_ = (next_ + 1) % burst_;
  count_ = std::min<size_t>(count_ + 1, burst_);
  suppressed = dropped_;
  dropped_ = 0;
  return true;
}

} // namespace tether::events
