#include "outputs/stale_outputs.hpp"

#include <catch2/catch.hpp>

using namespace tether;

namespace {

series_view window_of(std::string key, int64_t end_ms) {
  series_view v;
  v.key = std::move(key);
  v.window.end_ms = end_ms;
  return v;
}

} // namespace

TEST_CASE("stale_outputs returns each quiet series once, with its last window",
          "[outputs]") {
  outputs::stale_outputs s{1000};
  s.seen({window_of("a", 1000), window_of("b", 1000)});
  s.seen({window_of("a", 3000), window_of("b", 500)}); // b: an older repeat
  CHECK(s.expire(1900).empty());
  auto gone = s.expire(2500);
  REQUIRE(gone.size() == 1);
  CHECK(gone[0].key == "b");
  CHECK(gone[0].window.end_ms == 1000);
  CHECK(s.expire(2500).empty());
  CHECK(s.size() == 1);
  REQUIRE(s.expire(5000).size() == 1);
  CHECK(s.size() == 0);
}
