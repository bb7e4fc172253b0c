#include "tether-load/inflight_window.hpp"

#include <catch2/catch.hpp>

using namespace tether::tools::load;

TEST_CASE("inflight_window: bounded by capacity, answers in any order") {
  inflight_window w{3};
  auto t0 = inflight_window::clock::now();
  CHECK(w.empty());
  w.push({1, t0, 10});
  w.push({2, t0 + std::chrono::milliseconds{1}, 20});
  CHECK_FALSE(w.full());
  w.push({3, t0, 30});
  CHECK(w.full());
  CHECK(w.samples() == 60);
  auto second = w.take(2);
  REQUIRE(second);
  CHECK(second->samples == 20);
  CHECK(second->sent == t0 + std::chrono::milliseconds{1});
  CHECK_FALSE(w.full());
  CHECK_FALSE(w.take(2)); // already answered
  CHECK_FALSE(w.take(99)); // never sent
  REQUIRE(w.find(3) != nullptr);
  CHECK(w.find(3)->samples == 30);
  CHECK(w.find(2) == nullptr);
  CHECK(w.take(3)->samples == 30);
  CHECK(w.take(1)->samples == 10);
  CHECK(w.empty());
}

TEST_CASE("inflight_window: lowering the capacity keeps existing entries") {
  inflight_window w{4};
  auto t0 = inflight_window::clock::now();
  for (std::uint64_t s = 1; s <= 3; ++s)
    w.push({s, t0, 1});
  w.capacity(2);
  CHECK(w.capacity() == 2);
  CHECK(w.size() == 3);
  CHECK(w.full());
  w.take(1);
  CHECK(w.full());
  w.take(2);
  CHECK_FALSE(w.full());
  CHECK(inflight_window{0}.capacity() == 1);
}
