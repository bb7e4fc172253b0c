#include "tether-load/resend_buffer.hpp"

#include <catch2/catch.hpp>

using namespace tether::tools::load;
using namespace std::chrono_literals;

namespace {

std::string frame_of(std::uint64_t sequence) {
  return "frame-" + std::to_string(sequence) + std::string(100, 'x');
}

} // namespace

TEST_CASE("resend_buffer: backoff doubles from 10 ms up to 500 ms") {
  CHECK(resend_buffer::backoff(0) == 10ms);
  CHECK(resend_buffer::backoff(1) == 20ms);
  CHECK(resend_buffer::backoff(2) == 40ms);
  CHECK(resend_buffer::backoff(5) == 320ms);
  CHECK(resend_buffer::backoff(6) == 500ms);
  CHECK(resend_buffer::backoff(1000) == 500ms);
}

TEST_CASE("resend_buffer: nothing waits until a batch is scheduled") {
  resend_buffer b;
  auto now = resend_buffer::clock::now();
  b.keep(1, frame_of(1));
  b.keep(2, frame_of(2));
  CHECK(b.size() == 2);
  CHECK_FALSE(b.waiting());
  resend_buffer::clock::time_point next{};
  CHECK_FALSE(b.pop_due(now, next));
  CHECK(next == resend_buffer::clock::time_point::max());
}

TEST_CASE("resend_buffer: a retryable error sends the same frame again after its backoff") {
  resend_buffer b;
  auto now = resend_buffer::clock::now();
  b.keep(7, frame_of(7));
  CHECK_FALSE(b.schedule(8, now)); // not kept
  REQUIRE(b.schedule(7, now + 20ms));
  CHECK(b.waiting());
  CHECK(b.attempts(7) == 1);
  resend_buffer::clock::time_point next{};
  CHECK_FALSE(b.pop_due(now, next));
  CHECK(next == now + 20ms);
  auto due = b.pop_due(now + 20ms, next);
  REQUIRE(due);
  CHECK(due->sequence == 7);
  CHECK(due->frame == frame_of(7));
  CHECK_FALSE(b.waiting());
  CHECK(b.size() == 1); // kept until answered
  b.release(7);
  CHECK(b.size() == 0);
  CHECK(b.attempts(7) == 0);
}

TEST_CASE("resend_buffer: after a lost connection every unanswered batch goes again, in order") {
  resend_buffer b;
  auto now = resend_buffer::clock::now();
  for (std::uint64_t s : {12, 10, 11, 13})
    b.keep(s, frame_of(s));
  b.release(11); // answered before the loss
  b.schedule_all(now);
  std::vector<std::uint64_t> order;
  resend_buffer::clock::time_point next{};
  while (auto due = b.pop_due(now, next)) {
    CHECK(due->frame == frame_of(due->sequence));
    order.push_back(due->sequence);
  }
  CHECK(order == std::vector<std::uint64_t>{10, 12, 13});
  CHECK(b.attempts(10) == 1);
}

TEST_CASE("resend_buffer: a later batch waits behind an earlier one that is not due") {
  resend_buffer b;
  auto now = resend_buffer::clock::now();
  b.keep(1, frame_of(1));
  b.keep(2, frame_of(2));
  b.schedule(1, now + 50ms);
  b.schedule(2, now);
  resend_buffer::clock::time_point next{};
  CHECK_FALSE(b.pop_due(now, next));
  CHECK(next == now + 50ms);
  CHECK(b.pop_due(now + 50ms, next)->sequence == 1);
  CHECK(b.pop_due(now + 50ms, next)->sequence == 2);
}

TEST_CASE("resend_buffer: an answer while waiting cancels the resend") {
  resend_buffer b;
  auto now = resend_buffer::clock::now();
  b.keep(3, frame_of(3));
  b.schedule(3, now);
  b.release(3);
  resend_buffer::clock::time_point next{};
  CHECK_FALSE(b.pop_due(now, next));
  CHECK_FALSE(b.waiting());
}

TEST_CASE("resend_buffer: slots are reused once answered") {
  resend_buffer b;
  for (std::uint64_t s = 1; s <= 1000; ++s) {
    b.keep(s, frame_of(s));
    if (s > 8)
      b.release(s - 8);
  }
  CHECK(b.size() == 8);
  auto now = resend_buffer::clock::now();
  b.schedule_all(now);
  resend_buffer::clock::time_point next{};
  auto first = b.pop_due(now, next);
  REQUIRE(first);
  CHECK(first->sequence == 993);
  CHECK(first->frame == frame_of(993));
}
