#include "inflight_window.hpp"

#include <algorithm>

namespace tether::tools::load {

inflight_window::inflight_window(std::size_t capacity)
  : capacity_(std::max<std::size_t>(capacity, 1)) {
  entries_.reserve(capacity_);
}

void inflight_window::capacity(std::size_t value) {
  capacity_ = std::max<std::size_t>(value, 1);
  entries_.reserve(capacity_);
}

void inflight_window::push(const entry& e) {
  entries_.push_back(e);
}

std::optional<inflight_window::entry> inflight_window::take(std::uint64_t sequence) {
  auto i = std::find_if(entries_.begin(), entries_.end(),
                        [sequence](const entry& e) { return e.sequence == sequence; });
  if (i == entries_.end())
    return std::nullopt;
  auto found = *i;
  // Order does not matter: swap with the last and pop, no shifting.
  *i = entries_.back();
  entries_.pop_back();
  return found;
}

const inflight_window::entry* inflight_window::find(std::uint64_t sequence) const {
  auto i = std::find_if(entries_.begin(), entries_.end(),
                        [sequence](const entry& e) { return e.sequence == sequence; });
  return i == entries_.end() ? nullptr : &*i;
}

std::uint64_t inflight_window::samples() const noexcept {
  std::uint64_t total = 0;
  for (const auto& e : entries_)
    total += e.samples;
  return total;
}

} // namespace tether::tools::load
