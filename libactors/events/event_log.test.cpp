#include "events/event_log.hpp"

#include <sstream>

#include <catch2/catch.hpp>

using tether::events::event_log;

TEST_CASE("event_log keeps the latest events in order and writes each line") {
  std::ostringstream out;
  event_log log{"tether-1", 3, &out};
  for (int i = 1; i <= 5; ++i)
    CHECK(log.record("move", "slice " + std::to_string(i)) == static_cast<uint64_t>(i));
  auto all = log.since(0);
  REQUIRE(all.size() == 3);
  CHECK(all.front().seq == 3);
  CHECK(all.back().text == "slice 5");
  CHECK(log.since(4).size() == 1);
  CHECK(log.since(5).empty());
  CHECK(log.last_seq() == 5);
  CHECK(out.str().find("tether: tether-1: event move: slice 1\n") == 0);
}

TEST_CASE("event_log without an output stream only keeps the ring") {
  event_log log{"n", 0, nullptr};
  log.record("join", "a");
  log.record("join", "b");
  auto all = log.since(0);
  REQUIRE(all.size() == 1);
  CHECK(all[0].text == "b");
  CHECK(all[0].unix_ms > 0);
}
