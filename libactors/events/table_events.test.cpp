#include "events/table_events.hpp"

#include <catch2/catch.hpp>

using namespace tether;

namespace {

assignment_table three_nodes() {
  assignment_table t;
  t.version = 7;
  for (auto name : {"a", "b", "c"})
    t.members.push_back(member{name, std::string{name} + ":1", true, false, 1});
  for (int32_t s = 0; s < 6; ++s)
    t.slices.push_back(slice_assignment{1, s % 3, {(s + 1) % 3}, false});
  return t;
}

} // namespace

TEST_CASE("table_changes names a failure verdict and the failover it causes") {
  auto before = three_nodes();
  auto after = before;
  after.version = 8;
  after.members[1].up = false;
  for (auto& s : after.slices)
    if (s.primary == 1)
      s.primary = 2;
  auto ev = events::table_changes(before, after);
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].first == "failed");
  CHECK(ev[0].second.find("b declared failed") == 0);
  CHECK(ev[1].first == "failover");
  CHECK(ev[1].second == "2 slices failed over from b to c (table version 8)");
}

TEST_CASE("table_changes tells a drain and its moves from a failure") {
  auto before = three_nodes();
  auto after = before;
  after.members[0].up = false;
  after.members[0].drained = true;
  after.slices[0].primary = 1;
  auto ev = events::table_changes(before, after);
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].first == "drain");
  CHECK(ev[1].first == "move");
  CHECK(ev[1].second.find("slice 0 moved from a to b") == 0);
}

TEST_CASE("table_changes reports joins and nothing for an unchanged table") {
  auto before = three_nodes();
  CHECK(events::table_changes(before, before).empty());
  auto after = before;
  after.members.push_back(member{"d", "d:1", true, false, 2});
  auto ev = events::table_changes(before, after);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].first == "join");
  auto first = events::table_changes(assignment_table{}, before);
  REQUIRE(first.size() == 1);
  CHECK(first[0].first == "table");
}
