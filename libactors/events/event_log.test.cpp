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
  // TIME LEVEL NODE KIND: TEXT, one line per event.
  auto first = out.str().substr(0, out.str().find('\n'));
  CHECK(first.size() == 24 + std::string{" INFO tether-1 move: slice 1"}.size());
  CHECK(first.substr(24) == " INFO tether-1 move: slice 1");
  CHECK(first[10] == 'T');
  CHECK(first[23] == 'Z');
}

TEST_CASE("event log lines carry a level and a UTC time") {
  using tether::events::level_of;
  using tether::events::log_time;
  CHECK(level_of("failover") == "WARN");
  CHECK(level_of("suspect") == "WARN");
  CHECK(level_of("move") == "INFO");
  CHECK(log_time(0) == "1970-01-01T00:00:00.000Z");
  CHECK(log_time(1796515200123) == "2026-12-06T00:00:00.123Z");
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

TEST_CASE("the log level leaves out lower events but keeps every one in the ring") {
  using tether::events::log_level;
  using tether::events::parse_log_level;
  log_level level = log_level::info;
  CHECK(parse_log_level("warn", level));
  CHECK(level == log_level::warn);
  CHECK_FALSE(parse_log_level("debug", level));
  CHECK(level == log_level::warn);
  std::ostringstream warn_out;
  event_log warn_log{"n", 8, &warn_out, log_level::warn};
  warn_log.record("move", "slice 1 moved");
  warn_log.record("failover", "12 slices failed over");
  warn_log.record("refuse", "3 slices without a replica");
  CHECK(warn_out.str().find("move:") == std::string::npos);
  CHECK(warn_out.str().find("WARN n failover: 12 slices") != std::string::npos);
  CHECK(warn_out.str().find("WARN n refuse: 3 slices") != std::string::npos);
  CHECK(warn_log.since(0).size() == 3);
  std::ostringstream off_out;
  event_log off_log{"n", 8, &off_out, log_level::off};
  off_log.record("failover", "x");
  CHECK(off_out.str().empty());
  CHECK(off_log.since(0).size() == 1);
}
