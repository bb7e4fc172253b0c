#include "send_schedule.hpp"

#include <algorithm>
#include <limits>

namespace tether::tools::load {

namespace {

constexpr std::uint64_t ns_per_second = 1'000'000'000;

} // namespace

send_schedule::send_schedule(std::uint64_t rate, std::uint32_t batch,
                             std::uint32_t connections, std::uint32_t conn,
                             clock::time_point start)
  : rate_(std::clamp<std::uint64_t>(rate, 1, max_rate)),
    batch_(std::max<std::uint32_t>(batch, 1)),
    connections_(std::max<std::uint32_t>(connections, 1)),
    conn_(std::min(conn, connections_ - 1)),
    start_(start) {
  // nop
}

std::uint64_t send_schedule::slot_offset_ns(std::uint64_t slot, std::uint32_t batch,
                                            std::uint64_t rate) noexcept {
  const auto cap = static_cast<std::uint64_t>(max_offset.count());
  // slot * batch * 1e9 / rate without a 128-bit product: with B = batch * 1e9 (< 2^50)
  // = Q * rate + R, the offset is slot * Q + floor(slot * R / rate); splitting
  // slot = a * rate + b turns the second term into a * R + floor(b * R / rate), where
  // b * R < rate^2 <= 10^18 and a * R < slot. Q >= 1 because rate <= 10^9, so after the
  // check below slot * Q <= cap and slot <= cap: the sum stays below 2^64.
  const std::uint64_t whole = static_cast<std::uint64_t>(batch) * ns_per_second;
  const std::uint64_t q = whole / rate;
  const std::uint64_t r = whole % rate;
  if (q != 0 && slot > cap / q)
    return cap;
  const std::uint64_t a = slot / rate;
  const std::uint64_t b = slot % rate;
  const std::uint64_t result = slot * q + a * r + (b * r) / rate;
  return std::min(result, cap);
}

std::chrono::nanoseconds send_schedule::offset(std::uint64_t n) const noexcept {
  if (rate_ == 0)
    return max_offset;
  constexpr auto limit = std::numeric_limits<std::uint64_t>::max();
  if (n > (limit - conn_) / connections_)
    return max_offset;
  auto slot = n * connections_ + conn_;
  return std::chrono::nanoseconds{
    static_cast<std::chrono::nanoseconds::rep>(slot_offset_ns(slot, batch_, rate_))};
}

} // namespace tether::tools::load
