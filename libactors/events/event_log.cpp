#include "events/event_log.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace tether::events {

event_log::event_log(std::string node, size_t capacity, std::ostream* echo,
                     log_level level)
  : node_(std::move(node)),
    capacity_(std::max<size_t>(capacity, 1)),
    echo_(echo),
    level_(level) {
}

bool parse_log_level(std::string_view name, log_level& out) {
  if (name == "info")
    out = log_level::info;
  else if (name == "warn")
    out = log_level::warn;
  else if (name == "off")
    out = log_level::off;
  else
    return false;
  return true;
}

std::string slice_list(std::vector<uint32_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  std::string out = std::to_string(v.size()) + (v.size() == 1 ? " slice (" : " slices (");
  constexpr size_t shown = 8;
  for (size_t i = 0; i < v.size() && i < shown; ++i)
    out += (i ? ", " : "") + std::to_string(v[i]);
  if (v.size() > shown)
    out += (v.size() > shown + 1 ? ", ... " : ", ") + std::to_string(v.back());
  return out + ")";
}

std::string_view level_of(std::string_view kind) {
  for (auto k : {"failed", "lost", "suspect", "fence", "failover", "abandon", "unsettled",
                 "unresolved", "refuse", "start-empty", "withdraw"})
    if (kind == k)
      return "WARN";
  return "INFO";
}

std::string log_time(int64_t unix_ms) {
  auto secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(unix_ms % 1000));
  return buf;
}

uint64_t event_log::record(std::string kind, std::string text) {
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
  std::lock_guard<std::mutex> guard{mtx_};
  auto level = level_of(kind);
  bool echo = echo_ != nullptr
              && (level_ == log_level::info || (level_ == log_level::warn && level == "WARN"));
  if (echo)
    *echo_ << log_time(now) << ' ' << level << ' ' << node_ << ' ' << kind
           << ": " << text << std::endl;
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
