#include "outputs/window_order.hpp"

#include <catch2/catch.hpp>

using tether::series_view;
using tether::outputs::window_order;

namespace {

series_view window(const std::string& key, int64_t end_ms, double total) {
  series_view v;
  v.key = key;
  v.window.start_ms = end_ms - 1000;
  v.window.end_ms = end_ms;
  v.window.total = total;
  v.total = total;
  return v;
}

std::vector<int64_t> ends(const std::vector<series_view>& vs) {
  std::vector<int64_t> out;
  for (auto& v : vs)
    out.push_back(v.window.end_ms);
  return out;
}

} // namespace

TEST_CASE("window_order passes new windows and drops repeats", "[outputs]") {
  window_order order;
  std::vector<series_view> first{window("a", 2000, 1), window("b", 2000, 5)};
  CHECK(order.filter(first, 2000) == 0);
  CHECK(first.size() == 2);
  // A promoted primary emits the window ending at 2000 again, then the next one.
  std::vector<series_view> again{window("a", 2000, 1), window("b", 3000, 6)};
  CHECK(order.filter(again, 3000) == 1);
  REQUIRE(again.size() == 1);
  CHECK(again[0].key == "b");
  CHECK(again[0].window.end_ms == 3000);
  CHECK(order.size() == 2);
}

TEST_CASE("window_order drops a window older than one already passed", "[outputs]") {
  window_order order;
  std::vector<series_view> newer{window("k", 5000, 4160)};
  order.filter(newer, 5000);
  // The total of the older window is lower: passing it would show a counter going
  // backwards.
  std::vector<series_view> older{window("k", 4000, 4159), window("k", 6000, 4170)};
  CHECK(order.filter(older, 6000) == 1);
  CHECK(ends(older) == std::vector<int64_t>{6000});
}

TEST_CASE("window_order keeps order within one delivery", "[outputs]") {
  window_order order;
  std::vector<series_view> vs{window("k", 1000, 1), window("k", 1000, 1),
                              window("k", 3000, 3), window("k", 2000, 2),
                              window("j", 2000, 9)};
  CHECK(order.filter(vs, 3000) == 2);
  CHECK(ends(vs) == std::vector<int64_t>{1000, 3000, 2000});
  CHECK(vs[2].key == "j");
}

TEST_CASE("window_order forgets series idle beyond its horizon", "[outputs]") {
  window_order order(60'000);
  std::vector<series_view> vs{window("old", 1000, 1), window("new", 100'000, 1)};
  order.filter(vs, 100'000);
  CHECK(order.size() == 2);
  std::vector<series_view> none;
  order.filter(none, 100'000); // not yet due for a sweep
  CHECK(order.size() == 2);
  order.filter(none, 131'000); // due: "old" ended more than 60 s ago
  CHECK(order.size() == 1);
  // A forgotten series starts over.
  std::vector<series_view> back{window("old", 1000, 1)};
  CHECK(order.filter(back, 131'000) == 0);
}

TEST_CASE("window_order and a subscription's first update", "[outputs]") {
  window_order order;
  // A window closed at 2000 waits for its close mark to commit; meanwhile a
  // subscription reads the current state (that window, total 12 read later).
  std::vector<series_view> current{window("k", 2000, 12), window("j", 1000, 3)};
  CHECK(order.filter(current, 2100) == 0);
  CHECK(current.size() == 2);
  // The mark commits: the window is emitted with the total it had when it closed.
  std::vector<series_view> late{window("k", 2000, 10)};
  CHECK(order.filter(late, 2200) == 1);
  // Windows delivered before a read's answer: the answer's state of those series
  // is dropped (the windows may be sent on after it), the rest kept.
  std::vector<series_view> newer{window("j", 3000, 5), window("k", 4000, 14)};
  CHECK(order.filter(newer, 4000) == 0);
  std::vector<series_view> read{window("j", 3000, 6), window("k", 2000, 12),
                                window("m", 3000, 1)};
  CHECK(order.filter(read, 4000) == 2);
  REQUIRE(read.size() == 1);
  CHECK(read[0].key == "m");
}

TEST_CASE("a second subscription's snapshot keeps a series whose window was passed",
          "[outputs]") {
  window_order order;
  // A first subscription of the consumer passed the window ending at 2000 of "k".
  std::vector<series_view> update{window("k", 2000, 7)};
  CHECK(order.filter(update, 2000) == 0);
  // A second subscription naming "k" gets the current state: the same window.
  std::vector<series_view> snapshot{window("k", 2000, 7), window("new", 0, 0)};
  CHECK(order.filter_snapshot(snapshot, 2100) == 0);
  CHECK(snapshot.size() == 2);
  // A snapshot read before a window that was passed since is older: dropped.
  std::vector<series_view> next{window("k", 3000, 9)};
  order.filter(next, 3000);
  std::vector<series_view> late{window("k", 2000, 7)};
  CHECK(order.filter_snapshot(late, 3100) == 1);
  CHECK(late.empty());
}
