#include "visibility_tracker.hpp"

#include <algorithm>

namespace tether::tools::load {

visibility_tracker::visibility_tracker(output_map map, std::vector<std::uint64_t> outputs)
  : map_(map), outputs_(std::move(outputs)), slots_(outputs_.size()),
    scratch_(outputs_.size(), 0) {
  for (std::size_t i = 0; i < outputs_.size(); ++i)
    per_slot_.push_back(std::make_unique<activity_timeline>());
}

void visibility_tracker::start_timelines(clock::time_point at) {
  overall_.start(at);
  for (auto& t : per_slot_)
    t->start(at);
}

void visibility_tracker::finish_timelines(clock::time_point at) {
  overall_.finish(at);
  for (auto& t : per_slot_)
    t->finish(at);
}

std::size_t visibility_tracker::slot_of(std::uint64_t output) const noexcept {
  auto i = std::lower_bound(outputs_.begin(), outputs_.end(), output);
  if (i == outputs_.end() || *i != output)
    return npos;
  return static_cast<std::size_t>(i - outputs_.begin());
}

void visibility_tracker::on_batch(const std::vector<std::uint64_t>& ids,
                                  clock::time_point sent) {
  std::lock_guard<std::mutex> guard{mutex_};
  std::fill(scratch_.begin(), scratch_.end(), 0);
  for (auto id : ids) {
    auto slot = slot_of(map_.output_of(id));
    if (slot != npos)
      ++scratch_[slot];
  }
  for (std::size_t slot = 0; slot < scratch_.size(); ++slot)
    record_sent(slot, scratch_[slot], sent);
}

void visibility_tracker::on_sent(const std::vector<std::uint32_t>& counts,
                                 clock::time_point sent) {
  std::lock_guard<std::mutex> guard{mutex_};
  for (std::size_t slot = 0; slot < counts.size() && slot < slots_.size(); ++slot)
    record_sent(slot, counts[slot], sent);
}

void visibility_tracker::record_sent(std::size_t slot, std::uint32_t count,
                                     clock::time_point sent) {
  if (count == 0)
    return;
  auto& st = slots_[slot];
  st.sent += count;
  st.updates.push_back(update{st.sent, sent});
}

void visibility_tracker::set_baseline(std::size_t slot, std::uint64_t count) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (slot < slots_.size())
    slots_[slot].baseline = count;
}

std::uint64_t visibility_tracker::on_observed(std::size_t slot, std::uint64_t count,
                                              clock::time_point at) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (slot >= slots_.size())
    return 0;
  std::uint64_t made_visible = 0;
  auto& st = slots_[slot];
  auto visible = count > st.baseline ? count - st.baseline : 0;
  while (!st.updates.empty() && st.updates.front().until <= visible) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(at - st.updates.front().sent)
                .count();
    latency_.record(static_cast<std::uint64_t>(ns > 0 ? ns : 0));
    st.updates.pop_front();
    ++made_visible;
  }
  if (made_visible > 0) {
    overall_.record(at, made_visible);
    per_slot_[slot]->record(at, made_visible);
  }
  return made_visible;
}

bool visibility_tracker::pending(std::size_t slot) const {
  std::lock_guard<std::mutex> guard{mutex_};
  return slot < slots_.size() && !slots_[slot].updates.empty();
}

std::uint64_t visibility_tracker::pending_total() const {
  std::lock_guard<std::mutex> guard{mutex_};
  std::uint64_t total = 0;
  for (const auto& st : slots_)
    total += st.updates.size();
  return total;
}

latency_histogram visibility_tracker::latency() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return latency_;
}

} // namespace tether::tools::load
