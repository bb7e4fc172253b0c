#include "resend_buffer.hpp"

#include <algorithm>

namespace tether::tools::load {

std::chrono::milliseconds resend_buffer::backoff(std::uint32_t attempts) {
  auto out = first_backoff;
  for (std::uint32_t i = 0; i < attempts && out < max_backoff; ++i)
    out *= 2;
  return std::min(out, max_backoff);
}

resend_buffer::slot* resend_buffer::find(std::uint64_t sequence) {
  if (sequence == 0)
    return nullptr;
  for (auto& s : slots_)
    if (s.sequence == sequence)
      return &s;
  return nullptr;
}

const resend_buffer::slot* resend_buffer::find(std::uint64_t sequence) const {
  return const_cast<resend_buffer*>(this)->find(sequence);
}

void resend_buffer::keep(std::uint64_t sequence, std::string_view frame) {
  if (sequence == 0)
    return;
  auto* s = find(sequence);
  if (s == nullptr)
    s = find_free();
  s->sequence = sequence;
  s->frame.assign(frame.data(), frame.size()); // reuses the slot's capacity
  s->attempts = 0;
  s->waiting = false;
}

resend_buffer::slot* resend_buffer::find_free() {
  for (auto& s : slots_)
    if (s.sequence == 0)
      return &s;
  return &slots_.emplace_back();
}

void resend_buffer::release(std::uint64_t sequence) {
  if (auto* s = find(sequence)) {
    s->sequence = 0;
    s->waiting = false;
  }
}

bool resend_buffer::schedule(std::uint64_t sequence, clock::time_point due) {
  auto* s = find(sequence);
  if (s == nullptr)
    return false;
  s->waiting = true;
  s->due = due;
  ++s->attempts;
  return true;
}

void resend_buffer::schedule_all(clock::time_point now) {
  for (auto& s : slots_)
    if (s.sequence != 0) {
      s.waiting = true;
      s.due = now;
      ++s.attempts;
    }
}

std::optional<resend_buffer::due_frame> resend_buffer::pop_due(clock::time_point now,
                                                               clock::time_point& next_due) {
  slot* first = nullptr;
  for (auto& s : slots_)
    if (s.sequence != 0 && s.waiting && (first == nullptr || s.sequence < first->sequence))
      first = &s;
  if (first == nullptr) {
    next_due = clock::time_point::max();
    return std::nullopt;
  }
  if (first->due > now) {
    next_due = first->due;
    return std::nullopt;
  }
  first->waiting = false;
  return due_frame{first->sequence, first->frame};
}

bool resend_buffer::waiting() const noexcept {
  return std::any_of(slots_.begin(), slots_.end(),
                     [](const slot& s) { return s.sequence != 0 && s.waiting; });
}

std::uint32_t resend_buffer::attempts(std::uint64_t sequence) const {
  const auto* s = find(sequence);
  return s == nullptr ? 0 : s->attempts;
}

std::size_t resend_buffer::size() const noexcept {
  return static_cast<std::size_t>(
    std::count_if(slots_.begin(), slots_.end(), [](const slot& s) { return s.sequence != 0; }));
}

} // namespace tether::tools::load
