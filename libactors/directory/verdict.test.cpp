#include "directory/verdict.hpp"

#include <catch2/catch.hpp>

using tether::assignment_table;
using tether::directory::orphaned_slices;
using tether::directory::suspicion_board;

namespace {

/// A table of members "a", "b", ... with `down` of them down.
assignment_table members(size_t n, std::vector<std::string> down = {}) {
  assignment_table t;
  for (size_t i = 0; i < n; ++i) {
    tether::member m;
    m.name = std::string(1, static_cast<char>('a' + i));
    m.up = std::find(down.begin(), down.end(), m.name) == down.end();
    t.members.push_back(m);
  }
  return t;
}

constexpr int64_t ttl = 1000;

} // namespace

TEST_CASE("a member is failed once a majority of the other up members suspects it",
          "[directory][verdict]") {
  suspicion_board b{ttl};
  auto t = members(5); // a majority of the four others is three
  b.report("a", {"e"}, 100);
  b.report("b", {"e"}, 100);
  CHECK(b.failed(t, 200).empty());
  CHECK(b.pending(t, 200));
  b.report("c", {"e"}, 150);
  CHECK(b.failed(t, 200) == std::vector<int32_t>{4});
  SECTION("a report replaced by an empty one is withdrawn") {
    b.report("c", {}, 300);
    CHECK(b.failed(t, 300).empty());
  }
  SECTION("reports older than the ttl do not count") {
    CHECK(b.failed(t, 100 + ttl).size() == 1);
    CHECK(b.failed(t, 101 + ttl).empty());
    CHECK(b.pending(t, 150 + ttl)); // c's report is still fresh
    CHECK_FALSE(b.pending(t, 151 + ttl));
  }
  SECTION("a member that came back as a new process is suspected by nobody") {
    b.clear("e");
    CHECK(b.failed(t, 200).empty());
    CHECK_FALSE(b.any());
  }
}

TEST_CASE("votes of down or unknown members, and about oneself, do not count",
          "[directory][verdict]") {
  suspicion_board b{ttl};
  auto t = members(3, {"c"}); // a and b up: b fails once a suspects it
  b.report("c", {"b"}, 0);     // down
  b.report("zed", {"b"}, 0);   // not a member
  b.report("b", {"b"}, 0);     // itself
  CHECK(b.failed(t, 0).empty());
  b.report("a", {"b"}, 0);
  CHECK(b.failed(t, 0) == std::vector<int32_t>{1});
  // A member already down is not failed again, and its suspicion is not pending.
  suspicion_board d{ttl};
  d.report("a", {"c"}, 0);
  CHECK(d.failed(t, 0).empty());
  CHECK_FALSE(d.pending(t, 0));
}

TEST_CASE("a lone up member fails nobody", "[directory][verdict]") {
  suspicion_board b{ttl};
  auto t = members(2, {"b"});
  b.report("a", {"a"}, 0);
  CHECK(b.failed(t, 0).empty());
}

TEST_CASE("orphaned slices: primary down, a follower up", "[directory][verdict]") {
  auto t = members(3, {"a"});
  t.slices.resize(4);
  t.slices[0].primary = 0; // orphaned: b follows
  t.slices[0].followers = {1};
  t.slices[1].primary = 0; // no follower up
  t.slices[1].followers = {0};
  t.slices[2].primary = 1; // primary up
  t.slices[2].followers = {0};
  t.slices[3].primary = -1; // no primary at all
  t.slices[3].followers = {2};
  CHECK(orphaned_slices(t) == std::vector<uint32_t>{0});
}
