#include "directory/membership.hpp"

#include <catch2/catch.hpp>

using tether::assignment_table;
using tether::member;
using tether::slice_assignment;
using tether::directory::decide_join;
using tether::directory::join_decision;
using step = join_decision::step;

namespace {

member named(const std::string& name, uint64_t incarnation = 7) {
  return member{name, name + ":80", true, false, incarnation};
}

/// Three members; slice s led by member s % 3, followed by the next one.
assignment_table table_of_three() {
  assignment_table t;
  t.version = 5;
  t.replication_factor = 2;
  t.members = {named("a"), named("b"), named("c")};
  for (int32_t s = 0; s < 6; ++s)
    t.slices.push_back(slice_assignment{10, s % 3, {(s + 1) % 3}, false});
  return t;
}

const std::vector<std::string> directory{"a", "b", "c"};

std::vector<uint64_t> epochs(const assignment_table& t) {
  std::vector<uint64_t> out;
  for (auto& a : t.slices)
    out.push_back(a.epoch);
  return out;
}

} // namespace

TEST_CASE("a cluster forms once every directory member joined", "[membership]") {
  assignment_table empty;
  std::map<std::string, member> joined{{"a", named("a")}};
  auto d = decide_join(empty, named("b"), joined, directory, 8, 2);
  CHECK(d.what == step::wait);
  CHECK(d.missing == "c");

  joined["b"] = named("b");
  auto formed = decide_join(empty, named("c"), joined, directory, 8, 2);
  REQUIRE(formed.what == step::form);
  CHECK(formed.next.version == 1);
  REQUIRE(formed.next.members.size() == 3);
  CHECK(formed.next.members[2].name == "c");
  CHECK(formed.next.slices.size() == 8);
  // A member outside the directory waits like any other until the three are in.
  auto early = decide_join(empty, named("x"), {{"a", named("a")}}, directory, 8, 2);
  CHECK(early.what == step::wait);
  CHECK(early.missing == "b, c");
}

TEST_CASE("a join against a table", "[membership]") {
  auto t = table_of_three();
  std::map<std::string, member> none;

  SECTION("the same process at the same address changes nothing") {
    CHECK(decide_join(t, named("b"), none, directory, 6, 2).what == step::known);
  }
  SECTION("a new member is added") {
    auto d = decide_join(t, named("d"), none, directory, 6, 2);
    REQUIRE(d.what == step::propose);
    CHECK(d.next.version == 6);
    REQUIRE(d.next.members.size() == 4);
    CHECK(d.next.members[3].name == "d");
    CHECK(epochs(d.next) == epochs(t));
    CHECK_FALSE(d.clear_suspicions);
  }
  SECTION("another incarnation is a restarted process") {
    auto d = decide_join(t, named("c", 8), none, directory, 6, 2);
    CHECK(d.what == step::restarted);
    CHECK(d.member == 2);
  }
  SECTION("a member back from a pause leads its slices above any election fence") {
    t.members[1].up = false;
    t.members[1].drained = true;
    auto d = decide_join(t, named("b"), none, directory, 6, 2);
    REQUIRE(d.what == step::propose);
    CHECK(d.clear_suspicions);
    CHECK(d.next.version == 6);
    CHECK(d.next.members[1].up);
    CHECK_FALSE(d.next.members[1].drained);
    for (size_t s = 0; s < t.slices.size(); ++s)
      CHECK(d.next.slices[s].epoch == (s % 3 == 1 ? 12u : 10u));
  }
  SECTION("an up member at a new address is updated, its epochs unchanged") {
    auto moved = named("a");
    moved.address = "elsewhere:80";
    auto d = decide_join(t, moved, none, directory, 6, 2);
    REQUIRE(d.what == step::propose);
    CHECK(d.next.members[0].address == "elsewhere:80");
    CHECK(epochs(d.next) == epochs(t));
  }
}
