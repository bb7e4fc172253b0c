#include "series/input_tracker.hpp"

#include <catch2/catch.hpp>

using namespace tether;
using namespace tether::series;

namespace {

shard_write write_of(std::vector<std::pair<uint64_t, int64_t>> inputs, uint32_t rule) {
  shard_write w;
  w.producer = "p";
  w.sequence = 1;
  for (auto& [input, ts] : inputs) {
    wire::keyed_sample s;
    s.input_hash = input;
    s.timestamp_ms = ts;
    s.rule = rule;
    w.samples.push_back(s);
  }
  w.ranges.push_back(slice_range{0, 1, 0, static_cast<uint32_t>(w.samples.size())});
  return w;
}

std::shared_ptr<rules::rule_cache> rules_with(const char* json) {
  std::string error;
  auto set = rules::rule_set::parse(json, {}, error);
  REQUIRE(set);
  return std::make_shared<rules::rule_cache>(set);
}

} // namespace

TEST_CASE("input_tracker counts each input once and forgets quiet ones",
          "[input_tracker]") {
  auto counts = std::make_shared<input_counts>();
  input_tracker t{counts, rules_with(R"({"rules": [
    {"name": "r", "match": "m", "by": ["a"], "max_input_series": 3}]})")};
  auto w = write_of({{1, 100}, {2, 100}, {1, 150}}, 1);
  REQUIRE(t.admit(w, w.ranges[0]).empty());
  t.commit(w, w.ranges[0]);
  CHECK(t.size() == 2);
  CHECK(counts->total == 2);
  CHECK(counts->per_rule[0] == 2);
  // Two new inputs would make 4 > 3: refused as a whole, nothing recorded.
  auto more = write_of({{3, 200}, {4, 200}}, 1);
  CHECK_FALSE(t.admit(more, more.ranges[0]).empty());
  CHECK(counts->total == 2);
  // Input 2 was last seen at 100, input 1 at 150: expire before 120 forgets 2.
  CHECK(t.expire(120) == 1);
  CHECK(counts->total == 1);
  CHECK(counts->per_rule[0] == 1);
  REQUIRE(t.admit(more, more.ranges[0]).empty());
}

TEST_CASE("input_tracker returns its counts when it goes", "[input_tracker]") {
  auto counts = std::make_shared<input_counts>();
  {
    input_tracker t{counts, rules_with(R"({"max_input_series_per_node": 10,
                                           "rules": []})")};
    auto w = write_of({{1, 1}, {2, 1}}, 0);
    REQUIRE(t.admit(w, w.ranges[0]).empty());
    t.commit(w, w.ranges[0]);
    CHECK(counts->total == 2);
  }
  CHECK(counts->total == 0);
}
