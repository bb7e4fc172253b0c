#include "tether-load/output_map.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace tether::tools::load;

TEST_CASE("output_map: without folding every id is its own output") {
  output_map plain{sample_kind::counter, 1000, series_shape{}, false};
  CHECK(plain.count() == 1000);
  CHECK(plain.output_of(17) == 17);
  CHECK(plain.key(17) == "tether_load_total{series=\"17\"}");
  output_map shaped{sample_kind::gauge, 1000, series_shape{10, 3}, false};
  CHECK(shaped.key(123) == "tether_load_3_value{group=\"0\",series=\"123\"}");
  CHECK(shaped.key(45) == "tether_load_5_value{group=\"1\",series=\"45\"}");
}

TEST_CASE("output_map: folding the series label keeps metric and group") {
  output_map fold{sample_kind::counter, 1'000'000, series_shape{100, 100}, true};
  CHECK(fold.count() == 10'000);
  // id 12345: metric 45, group (12345 / 100) % 100 = 23.
  CHECK(fold.output_of(12345) == 45 + 100 * 23);
  CHECK(fold.key(fold.output_of(12345)) == "tether_load_45_total{group=\"23\"}");
  // Every output is the output of its own index, and all ids land on [0, count).
  std::set<std::uint64_t> outputs;
  for (std::uint64_t id = 0; id < 1'000'000; id += 7) {
    auto o = fold.output_of(id);
    REQUIRE(o < fold.count());
    outputs.insert(o);
  }
  CHECK(outputs.size() == 10'000);
  for (std::uint64_t o = 0; o < fold.count(); o += 97)
    CHECK(fold.output_of(o) == o);
}

TEST_CASE("output_map: folds without groups or metrics") {
  output_map one{sample_kind::counter, 5000, series_shape{}, true};
  CHECK(one.count() == 1);
  CHECK(one.output_of(4321) == 0);
  CHECK(one.key(0) == "tether_load_total");
  output_map metrics_only{sample_kind::counter, 5000, series_shape{8, 0}, true};
  CHECK(metrics_only.count() == 8);
  CHECK(metrics_only.output_of(4321) == 1);
  CHECK(metrics_only.key(1) == "tether_load_1_total");
  output_map groups_only{sample_kind::gauge, 5000, series_shape{0, 4}, true};
  CHECK(groups_only.count() == 4);
  CHECK(groups_only.output_of(4321) == 1);
  CHECK(groups_only.key(1) == "tether_load_value{group=\"1\"}");
}

TEST_CASE("output_map: spread picks distinct outputs from 0 across the range") {
  output_map plain{sample_kind::counter, 1000, series_shape{}, false};
  CHECK(plain.spread(4) == std::vector<std::uint64_t>{0, 250, 500, 750});
  CHECK(plain.spread(1) == std::vector<std::uint64_t>{0});
  CHECK(plain.spread(0).empty());
  output_map small{sample_kind::counter, 3, series_shape{}, false};
  CHECK(small.spread(8) == std::vector<std::uint64_t>{0, 1, 2});
  output_map huge{sample_kind::counter, 100'000'000, series_shape{}, false};
  CHECK(huge.spread(3) == std::vector<std::uint64_t>{0, 33'333'333, 66'666'666});
}

TEST_CASE("output_map: of() follows the options") {
  load_options opts;
  opts.series = 1000;
  opts.metrics = 10;
  opts.groups = 10;
  opts.fold_series = true;
  CHECK(output_map::of(opts).count() == 100);
  opts.fold_series = false;
  CHECK(output_map::of(opts).count() == 1000);
}
