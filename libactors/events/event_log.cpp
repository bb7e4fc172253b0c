#include "events/event_log.hpp"

#include <algorithm>
#include <chrono>

namespace tether::events {

event_log::event_log(std::string node, size_t capacity, std::ostream* echo)
  : node_(std::move(node)), capacity_(std::max<size_t>(capacity, 1)), echo_(echo) {
}

uint64_t event_log::record(std::string kind, std::string text) {
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
  std::lock_guard<std::mutex> guard{mtx_};
  if (echo_ != nullptr)
    *echo_ << "tether: " << node_ << ": event " << kind << ": " << text << std::endl;
  if (ring_.size() == capacity_)
    ring_.pop_front();
  ring_.push_back(cluster_event{++seq_, now, std::move(kind), std::move(text)});
  return seq_;
}

std::vector<cluster_event> event_log::since(uint64_t after) const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<cluster_event> out;
  for (auto& e : ring_)
    if (e.seq > after)
      out.push_back(e);
  return out;
}

uint64_t event_log::last_seq() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return seq_;
}

} // namespace tether::events
