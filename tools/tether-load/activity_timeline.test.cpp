#include "tether-load/activity_timeline.hpp"

#include <catch2/catch.hpp>

#include <thread>

using namespace tether::tools::load;
using namespace std::chrono_literals;

TEST_CASE("activity_timeline: amounts per bucket from the start") {
  activity_timeline t{100ms};
  auto t0 = activity_timeline::clock::now();
  t.record(t0, 5); // before start: ignored
  t.start(t0);
  t.record(t0, 1);
  t.record(t0 + 99ms, 2);
  t.record(t0 + 100ms, 3);
  t.record(t0 + 350ms, 4);
  CHECK(t.buckets() == std::vector<std::uint64_t>{3, 3, 0, 4});
  t.finish(t0 + 620ms);
  CHECK(t.buckets() == std::vector<std::uint64_t>{3, 3, 0, 4, 0, 0, 0});
  t.record(t0 + 700ms, 9); // after finish: ignored
  CHECK(t.buckets().size() == 7);
}

TEST_CASE("activity_timeline: the longest gaps, exact, in order of time") {
  activity_timeline t{100ms, 1000, 2, 10ms};
  auto t0 = activity_timeline::clock::now();
  t.start(t0);
  t.record(t0 + 5ms, 1);    // 5 ms after the start: below min_gap
  t.record(t0 + 55ms, 1);   // 50 ms
  t.record(t0 + 75ms, 1);   // 20 ms
  t.record(t0 + 475ms, 1);  // 400 ms
  t.record(t0 + 500ms, 1);  // 25 ms
  auto gaps = t.gaps();
  REQUIRE(gaps.size() == 2); // the two longest of 50, 20, 400, 25
  CHECK(gaps[0].from_s == Approx(0.005));
  CHECK(gaps[0].to_s == Approx(0.055));
  CHECK_FALSE(gaps[0].open);
  CHECK(gaps[1].from_s == Approx(0.075));
  CHECK(gaps[1].to_s == Approx(0.475));
  CHECK(gaps[1].seconds() == Approx(0.4));
}

TEST_CASE("activity_timeline: a stretch until the end is an open gap") {
  activity_timeline t{100ms, 1000, 4, 10ms};
  auto t0 = activity_timeline::clock::now();
  t.start(t0);
  t.record(t0 + 20ms, 1);
  t.finish(t0 + 1020ms);
  auto gaps = t.gaps();
  REQUIRE(gaps.size() == 2);
  CHECK(gaps[1].open);
  CHECK(gaps[1].from_s == Approx(0.02));
  CHECK(gaps[1].to_s == Approx(1.02));
}

TEST_CASE("activity_timeline: with no event at all the whole run is one open gap") {
  activity_timeline t;
  auto t0 = activity_timeline::clock::now();
  t.start(t0);
  t.finish(t0 + 2s);
  auto gaps = t.gaps();
  REQUIRE(gaps.size() == 1);
  CHECK(gaps[0].open);
  CHECK(gaps[0].seconds() == Approx(2.0));
}

TEST_CASE("activity_timeline: events out of order count but open no gap") {
  activity_timeline t{100ms, 1000, 4, 10ms};
  auto t0 = activity_timeline::clock::now();
  t.start(t0);
  t.record(t0 + 300ms, 1);
  t.record(t0 + 150ms, 1); // taken earlier on another thread, recorded later
  t.record(t0 + 320ms, 1);
  auto gaps = t.gaps();
  REQUIRE(gaps.size() == 2);
  CHECK(gaps[0].to_s == Approx(0.3)); // start .. 300 ms
  CHECK(gaps[1].from_s == Approx(0.3));
  CHECK(gaps[1].to_s == Approx(0.32));
  CHECK(t.buckets() == std::vector<std::uint64_t>{0, 1, 0, 2});
}

TEST_CASE("activity_timeline: buckets stop at the bound, gaps do not") {
  activity_timeline t{10ms, 3, 4, 10ms};
  auto t0 = activity_timeline::clock::now();
  t.start(t0);
  t.record(t0 + 5ms, 1);
  t.record(t0 + 500ms, 1);
  t.finish(t0 + 1s);
  CHECK(t.buckets() == std::vector<std::uint64_t>{1, 0, 0});
  auto gaps = t.gaps();
  REQUIRE(gaps.size() == 2);
  CHECK(gaps[0].to_s == Approx(0.5));
  CHECK(gaps[1].open);
}

TEST_CASE("activity_timeline: records from several threads add up") {
  activity_timeline t{100ms};
  auto t0 = activity_timeline::clock::now();
  t.start(t0);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&t, t0] {
      for (int k = 0; k < 1000; ++k)
        t.record(t0 + std::chrono::microseconds{k * 100}, 1);
    });
  for (auto& th : threads)
    th.join();
  std::uint64_t total = 0;
  for (auto b : t.buckets())
    total += b;
  CHECK(total == 4000);
}
