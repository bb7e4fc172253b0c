#include "events/log_limiter.hpp"

#include <chrono>

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
  REQUIRE(limiter.admit(t0 + 10s, suppressed));
  CHECK(suppressed == 5);
  REQUIRE(limiter.admit(t0 + 10s, suppressed));
  CHECK(suppressed == 0); // reported with one line only
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
