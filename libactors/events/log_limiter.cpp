#include "events/log_limiter.hpp"

namespace tether::events {

bool log_limiter::admit(clock::time_point now, uint64_t& suppressed) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (now - period_start_ >= period_) {
    period_start_ = now;
    written_ = 0;
  }
  if (written_ >= burst_) {
    ++dropped_;
    return false;
  }
  ++written_;
  suppressed = dropped_;
  dropped_ = 0;
  return true;
}

} // namespace tether::events
