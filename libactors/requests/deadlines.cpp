#include "requests/deadlines.hpp"

#include <algorithm>

#include <caf/local_actor.hpp>
#include <caf/sec.hpp>

namespace tether::requests {

bool deadlines::add(caf::message_id id, clock::time_point now) {
  // Requests of one actor get increasing ids; one timeout keeps deadlines in order.
  waiting_.push_back(entry{id.integer_value(), now + timeout_, false});
  if (armed_)
    return false;
  armed_ = true;
  return true;
}

void deadlines::done(caf::message_id id) {
  auto v = id.integer_value();
  auto i = std::lower_bound(waiting_.begin(), waiting_.end(), v,
                            [](const entry& e, uint64_t x) { return e.id < x; });
  if (i != waiting_.end() && i->id == v)
    i->answered = true;
  while (!waiting_.empty() && waiting_.front().answered)
    waiting_.pop_front();
}

bool deadlines::sweep(caf::local_actor* self, clock::time_point now) {
  while (!waiting_.empty()) {
    auto& e = waiting_.front();
    if (!e.answered) {
      if (e.due > now)
        break;
      self->eq_impl(caf::message_id{e.id}, self->ctrl(), self->context(),
                    caf::make_error(caf::sec::request_timeout));
    }
    waiting_.pop_front();
  }
  armed_ = !waiting_.empty();
  return armed_;
}

std::chrono::milliseconds deadlines::interval() const noexcept {
  return std::clamp(timeout_ / 10, std::chrono::milliseconds{5},
                    std::chrono::milliseconds{100});
}

} // namespace tether::requests
