#include "tether-load/send_schedule.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <set>

using namespace std::chrono_literals;
using tether::tools::load::send_schedule;

namespace {

std::int64_t ns(std::chrono::nanoseconds d) {
  return static_cast<std::int64_t>(d.count());
}

} // namespace

TEST_CASE("send_schedule: one connection sends every batch / rate seconds") {
  auto t0 = send_schedule::clock::now();
  send_schedule s{20'000, 100, 1, 0, t0}; // 200 batches/s: one every 5 ms
  CHECK(s.start() == t0);
  CHECK(s.offset(0) == 0ns);
  CHECK(s.offset(1) == 5ms);
  CHECK(s.offset(2) == 10ms);
  CHECK(s.offset(200) == 1s);
  CHECK(s.at(3) == t0 + 15ms);
}

TEST_CASE("send_schedule: connections take turns, each at rate / connections") {
  auto t0 = send_schedule::clock::time_point{};
  // 20k samples/s in batches of 100 over 2 connections: a batch every 5 ms overall, every
  // 10 ms per connection, the second connection half a period behind the first.
  send_schedule c0{20'000, 100, 2, 0, t0};
  send_schedule c1{20'000, 100, 2, 1, t0};
  CHECK(c0.offset(0) == 0ms);
  CHECK(c1.offset(0) == 5ms);
  CHECK(c0.offset(1) == 10ms);
  CHECK(c1.offset(1) == 15ms);
  CHECK(c0.offset(100) == 1s);
  CHECK(c1.offset(99) == 995ms);
  // Over one second the two connections own 200 distinct slots 5 ms apart.
  std::set<std::int64_t> slots;
  for (std::uint64_t n = 0; n < 100; ++n) {
    slots.insert(ns(c0.offset(n)));
    slots.insert(ns(c1.offset(n)));
  }
  REQUIRE(slots.size() == 200);
  CHECK(*slots.rbegin() == ns(995ms));
}

TEST_CASE("send_schedule: fractional intervals do not drift") {
  auto t0 = send_schedule::clock::time_point{};
  // 3 samples/s in batches of 1 on 1 connection: 333333333.33... ns apart.
  send_schedule s{3, 1, 1, 0, t0};
  CHECK(ns(s.offset(1)) == 333'333'333);
  CHECK(ns(s.offset(2)) == 666'666'666);
  CHECK(s.offset(3) == 1s);
  CHECK(s.offset(3'000'000) == 1'000'000s);
  // 7 connections at 1M samples/s in batches of 3: slot g at floor(g * 3000 ns).
  send_schedule c4{1'000'000, 3, 7, 4, t0};
  CHECK(ns(c4.offset(0)) == 4 * 3'000);
  CHECK(ns(c4.offset(1'000'000)) == (1'000'000LL * 7 + 4) * 3'000);
  // 50k samples/s over 3 connections in batches of 1000: 20 ms per global slot.
  send_schedule c2{50'000, 1000, 3, 2, t0};
  CHECK(c2.offset(0) == 40ms);
  CHECK(c2.offset(1) == 100ms);
}

TEST_CASE("send_schedule: exact floor(slot * batch * 1e9 / rate) at the extremes") {
  // A rate that is not a divisor of batch * 1e9, large slot numbers: compare with a
  // calculation that cannot overflow because the numbers are chosen to fit.
  const std::uint64_t rate = 999'999'937; // prime
  for (std::uint64_t slot : {0ULL, 1ULL, 999'999'936ULL, 999'999'937ULL, 12'345'678'901ULL}) {
    // slot * 1e9 / rate == slot + slot * 63 / rate for batch 1 (1e9 = rate + 63).
    std::uint64_t expected = slot + slot * 63 / rate;
    CHECK(send_schedule::slot_offset_ns(slot, 1, rate) == expected);
  }
  // The largest batch at the smallest rate is one batch in ~11.6 days; saturation beyond
  // max_offset instead of overflow.
  const auto cap = static_cast<std::uint64_t>(send_schedule::max_offset.count());
  CHECK(send_schedule::slot_offset_ns(1, 1'000'000, 1) == 1'000'000ULL * 1'000'000'000ULL);
  CHECK(send_schedule::slot_offset_ns(1'000'000'000'000ULL, 1'000'000, 1) == cap);
  CHECK(send_schedule::slot_offset_ns(~0ULL, 1, send_schedule::max_rate) == cap);
  send_schedule slow{1, 1'000'000, 4096, 4095, send_schedule::clock::now()};
  CHECK(slow.offset(~0ULL) == send_schedule::max_offset);
  CHECK(slow.offset(1'000'000) == send_schedule::max_offset);
}

TEST_CASE("send_schedule: default and out-of-range construction") {
  send_schedule none;
  CHECK(none.offset(0) == send_schedule::max_offset);
  auto t0 = send_schedule::clock::time_point{};
  send_schedule clamped{0, 0, 0, 9, t0}; // rate 1, batch 1, 1 connection, connection 0
  CHECK(clamped.offset(0) == 0s);
  CHECK(clamped.offset(2) == 2s);
  send_schedule fast{5'000'000'000ULL, 1, 1, 0, t0}; // clamped to max_rate
  CHECK(fast.offset(1'000) == 1us);
}

TEST_CASE("send_schedule: late means more than 1 ms after the scheduled time") {
  auto due = send_schedule::clock::now();
  CHECK_FALSE(send_schedule::is_late(due, due));
  CHECK_FALSE(send_schedule::is_late(due, due - 5ms)); // early is not late
  CHECK_FALSE(send_schedule::is_late(due, due + 1ms));
  CHECK(send_schedule::is_late(due, due + 1ms + 1ns));
  CHECK(send_schedule::is_late(due, due + 2s));
}
