#include "events/log_limiter.hpp"

#include <chrono>
#include <vector>

#include <catch2/catch.hpp>

using tether::events::log_limiter;
using namespace std::chrono_literals;

namespace {

/// A time well after the clock's epoch, where a limiter's first period starts.
const auto t0 = log_limiter::clock::time_point{} + 1h;

} // namespace

TEST_CASE("log_limiter lets a burst through, drops the rest of the period and reports "
          "their count once",
          "[log_limiter]") {
  log_limiter limiter{3, 10s};
  uint64_t suppressed = 99;
  for (int i = 0; i < 3; ++i) {
    CHECK(limiter.admit(t0 + i * 1s, suppressed));
    CHECK(suppressed == 0);
  }
  for (int i = 0; i < 4; ++i)
    CHECK_FALSE(limiter.admit(t0 + 9s, suppressed));
  CHECK_FALSE(limiter.admit(t0 + 10s - 1ns, suppressed));
  REQUIRE(limiter.admit(t0 + 10s, suppressed)); // the line of t0 is a period old
  CHECK(suppressed == 5);
  CHECK_FALSE(limiter.admit(t0 + 10s, suppressed)); // the one of t0 + 1 s is not
  REQUIRE(limiter.admit(t0 + 11s, suppressed));
  CHECK(suppressed == 1); // reported with one line only
  REQUIRE(limiter.admit(t0 + 12s, suppressed));
  CHECK(suppressed == 0);
}

TEST_CASE("log_limiter lets no stretch of a period through more than a burst, "
          "wherever it starts",
          "[log_limiter]") {
  // 3 lines early in a period, then a flood from 8 s on: a limiter that counted per
  // period from the first line would let 7 more through before 10 s and 10 after,
  // 17 within the 10 s from 8 s on.
  log_limiter limiter{10, 10s};
  uint64_t suppressed = 0;
  std::vector<log_limiter::clock::time_point> written;
  for (int i = 0; i < 3; ++i)
    if (limiter.admit(t0 + i * 10ms, suppressed))
      written.push_back(t0 + i * 10ms);
  for (int i = 0; i < 2000; ++i) { // a line every 5 ms from 8 s to 18 s
    auto now = t0 + 8s + i * 5ms;
    if (limiter.admit(now, suppressed))
      written.push_back(now);
  }
  REQUIRE(written.size() == 13); // 10 by 10 s, and again once the first 3 expire
  for (size_t i = 0; i + 10 < written.size(); ++i)
    CHECK(written[i + 10] - written[i] >= 10s);
}

TEST_CASE("log_limiter starts a new period with the first line after one ended",
          "[log_limiter]") {
  log_limiter limiter{1, 10s};
  uint64_t suppressed = 0;
  CHECK(limiter.admit(t0, suppressed));
  CHECK_FALSE(limiter.admit(t0 + 1s, suppressed));
  // Quiet for longer than a period: the next line opens a period of its own.
  REQUIRE(limiter.admit(t0 + 25s, suppressed));
  CHECK(suppressed == 1);
  CHECK_FALSE(limiter.admit(t0 + 34s, suppressed));
  REQUIRE(limiter.admit(t0 + 35s, suppressed));
  CHECK(suppressed == 1);
}
