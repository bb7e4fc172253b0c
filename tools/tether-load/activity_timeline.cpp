#include "activity_timeline.hpp"

#include <algorithm>

namespace tether::tools::load {

namespace {

double seconds_between(activity_timeline::clock::time_point from,
                       activity_timeline::clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

} // namespace

activity_timeline::activity_timeline(std::chrono::milliseconds bucket, std::size_t max_buckets,
                                     std::size_t max_gaps, std::chrono::milliseconds min_gap)
  : bucket_(std::max(bucket, std::chrono::milliseconds{1})),
    max_buckets_(max_buckets),
    max_gaps_(std::max<std::size_t>(max_gaps, 1)),
    min_gap_(min_gap) {
  // nop
}

void activity_timeline::start(clock::time_point at) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (started_)
    return;
  started_ = true;
  start_ = at;
  latest_ = at;
}

void activity_timeline::record(clock::time_point at, std::uint64_t amount) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (!started_ || finished_ || at < start_)
    return;
  auto index = static_cast<std::size_t>((at - start_) / bucket_);
  if (index < max_buckets_) {
    if (buckets_.size() <= index)
      buckets_.resize(index + 1, 0);
    buckets_[index] += amount;
  }
  if (at <= latest_)
    return; // out of order, or at the same time: no stretch without events
  add_gap(latest_, at, false);
  latest_ = at;
}

void activity_timeline::finish(clock::time_point at) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (!started_ || finished_)
    return;
  finished_ = true;
  if (at <= latest_)
    return;
  add_gap(latest_, at, true);
  // Trailing buckets without events belong to the timeline too.
  auto last = static_cast<std::size_t>((at - start_) / bucket_);
  if (buckets_.size() <= last)
    buckets_.resize(std::min(last + 1, max_buckets_), 0);
}

void activity_timeline::add_gap(clock::time_point from, clock::time_point to, bool open) {
  if (to - from < min_gap_)
    return;
  gap g{seconds_between(start_, from), seconds_between(start_, to), open};
  if (gaps_.size() < max_gaps_) {
    gaps_.push_back(g);
    return;
  }
  auto shortest = std::min_element(gaps_.begin(), gaps_.end(), [](const gap& a, const gap& b) {
    return a.seconds() < b.seconds();
  });
  if (shortest->seconds() < g.seconds())
    *shortest = g;
}

std::vector<std::uint64_t> activity_timeline::buckets() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return buckets_;
}

std::vector<activity_timeline::gap> activity_timeline::gaps() const {
  std::vector<gap> out;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    out = gaps_;
  }
  std::sort(out.begin(), out.end(), [](const gap& a, const gap& b) { return a.from_s < b.from_s; });
  return out;
}

} // namespace tether::tools::load
