#include "routing/split.hpp"

#include <map>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <catch2/catch.hpp>

#include "keys/slicing.hpp"
#include "tether/tether.hpp"

using namespace tether;
using tether::routing::routed_write;
using tether::routing::route_table;
using tether::routing::splitter;

namespace {

/// A shard that answers every request with a default value: the splitter only needs
/// distinct handles.
series::shard_actor::behavior_type null_shard() {
  return {
    [](write_atom, const series::shard_write&) { return series::shard_write_result{}; },
    [](read_atom, const series::key_route&) { return series_view{}; },
    [](read_atom) { return series::shard_scrape{}; },
    [](subscribe_atom, const std::vector<series::key_route>&, const caf::actor&) {
      return std::vector<series_view>{};
    },
    [](update_atom, const assignment_table&) {},
    [](series::tick_atom) {},
    [](series::position_atom, const std::vector<uint32_t>&) {
      return std::vector<series::replica_position>{};
    },
    [](series::position_atom, const std::vector<uint32_t>&,
       const std::vector<uint64_t>&, uint64_t) { return std::vector<series::replica_position>{}; },
    [](read_atom, series::local_atom, const series::key_route&)
      -> caf::result<series_view, series::replica_position> {
      return {series_view{}, series::replica_position{}};
    },
  };
}

struct fixture {
  fixture() : sys(init(cfg)) {
    shard_a = sys.spawn(null_shard);
    shard_b = sys.spawn(null_shard);
    // Slices 0, 2, 4 on shard a; 1, 3, 5 on shard b; 6 has no primary; 7 has a
    // primary that this node cannot reach.
    table.version = 3;
    table.local_node = "tether-0";
    table.members = {member{"tether-0", "127.0.0.1:1", true},
                     member{"tether-1", "127.0.0.1:2", true}};
    table.slices.resize(8);
    for (uint32_t s = 0; s < 6; ++s) {
      auto& r = table.slices[s];
      r.epoch = 100 + s;
      r.primary = 0;
      r.shard = s % 2 == 0 ? shard_a : shard_b;
    }
    table.slices[6].epoch = 106;
    table.slices[6].primary = -1;
    table.slices[7].epoch = 107;
    table.slices[7].primary = 1;
  }

  ~fixture() {
    table.slices.clear();
    caf::anon_send_exit(shard_a, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(shard_b, caf::exit_reason::user_shutdown);
  }

  static caf::actor_system_config& init(caf::actor_system_config& c) {
    tether::configure(c);
    c.set("scheduler.max-threads", 1);
    return c;
  }

  /// Appends a sample whose key names its batch position and slice.
  void add(uint32_t slice) {
    auto index = batch.samples.size();
    auto key = "m{i=\"" + std::to_string(index) + "\",s=\"" + std::to_string(slice)
               + "\"}";
    wire::keyed_sample s;
    s.key_offset = static_cast<uint32_t>(batch.keys.size());
    s.key_size = static_cast<uint32_t>(key.size());
    batch.keys += key;
    s.hash = keys::key_hash(key);
    s.slice = slice;
    s.kind = kind::gauge;
    s.value = static_cast<double>(index); // remembers the batch position
    s.timestamp_ms = 1000 + static_cast<int64_t>(index);
    batch.samples.push_back(s);
  }

  const routed_write* write_for(const series::shard_actor& shard,
                                const std::vector<routed_write>& out) const {
    for (auto& w : out)
      if (w.shard == shard)
        return &w;
    return nullptr;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  series::shard_actor shard_a;
  series::shard_actor shard_b;
  route_table table;
  wire::keyed_batch batch;
};

} // namespace

TEST_CASE_METHOD(fixture, "split groups slices into one write per shard",
                 "[split]") {
  batch.producer = "producer-1";
  batch.sequence = 42;
  // Interleaved slices, several samples per slice.
  for (uint32_t s : {3, 0, 4, 3, 1, 0, 6, 5, 2, 0, 3, 6, 4})
    add(s);

  splitter sp;
  std::vector<routed_write> out;
  std::vector<uint32_t> unroutable;
  sp.split(batch, table, out, unroutable);

  REQUIRE(out.size() == 2);
  CHECK(out[0].shard != out[1].shard);
  auto* wa = write_for(shard_a, out);
  auto* wb = write_for(shard_b, out);
  REQUIRE(wa != nullptr);
  REQUIRE(wb != nullptr);

  // Slice 6 has samples and no primary; slice 7 has no samples and is not reported.
  CHECK(unroutable == std::vector<uint32_t>{6});

  size_t routed = 0;
  for (auto* rw : {wa, wb}) {
    auto& w = rw->write;
    CHECK(w.producer == "producer-1");
    CHECK(w.sequence == 42);
    uint32_t expected_begin = 0;
    uint32_t previous_slice = 0;
    bool first_range = true;
    size_t key_bytes = 0;
    for (auto& r : w.ranges) {
      INFO("slice " << r.slice);
      // Ranges tile the samples, in ascending slice order.
      CHECK(r.begin == expected_begin);
      CHECK(r.end > r.begin);
      if (!first_range)
        CHECK(r.slice > previous_slice);
      first_range = false;
      previous_slice = r.slice;
      expected_begin = r.end;
      // The shard serves the slice and the epoch is the table's.
      CHECK(table.slices[r.slice].shard == rw->shard);
      CHECK(r.epoch == table.slices[r.slice].epoch);
      double previous_position = -1;
      for (auto i = r.begin; i < r.end; ++i) {
        auto& s = w.samples[i];
        CHECK(s.slice == r.slice);
        // Batch order within the slice.
        CHECK(s.value > previous_position);
        previous_position = s.value;
        // The key offset points into this write's own arena, at the right text.
        REQUIRE(s.key_offset + s.key_size <= w.keys.size());
        auto& original = batch.samples[static_cast<size_t>(s.value)];
        CHECK(w.key(s) == batch.key(original));
        CHECK(s.key_size == original.key_size);
        CHECK(s.hash == original.hash);
        CHECK(s.timestamp_ms == original.timestamp_ms);
        key_bytes += s.key_size;
      }
    }
    CHECK(expected_begin == w.samples.size());
    CHECK(w.keys.size() == key_bytes); // only this shard's keys
    routed += w.samples.size();
  }
  CHECK(routed == batch.samples.size() - 2); // the two samples of slice 6

  // Per-slice contents, in batch order.
  std::map<uint32_t, std::vector<int>> positions;
  for (auto* rw : {wa, wb})
    for (auto& r : rw->write.ranges)
      for (auto i = r.begin; i < r.end; ++i)
        positions[r.slice].push_back(static_cast<int>(rw->write.samples[i].value));
  CHECK(positions[0] == std::vector<int>{1, 5, 9});
  CHECK(positions[1] == std::vector<int>{4});
  CHECK(positions[2] == std::vector<int>{8});
  CHECK(positions[3] == std::vector<int>{0, 3, 10});
  CHECK(positions[4] == std::vector<int>{2, 12});
  CHECK(positions[5] == std::vector<int>{7});
  CHECK(positions.count(6) == 0);

  REQUIRE(wa->write.ranges.size() == 3);
  CHECK(wa->write.ranges[0].slice == 0);
  CHECK(wa->write.ranges[1].slice == 2);
  CHECK(wa->write.ranges[2].slice == 4);
  REQUIRE(wb->write.ranges.size() == 3);
  CHECK(wb->write.ranges[0].slice == 1);
  CHECK(wb->write.ranges[1].slice == 3);
  CHECK(wb->write.ranges[2].slice == 5);
}

TEST_CASE_METHOD(fixture, "split only addresses shards that get samples",
                 "[split]") {
  batch.sequence = 1;
  add(2);
  add(4);
  splitter sp;
  std::vector<routed_write> out;
  std::vector<uint32_t> unroutable{99};
  sp.split(batch, table, out, unroutable);
  REQUIRE(out.size() == 1);
  CHECK(out[0].shard == shard_a);
  CHECK(out[0].write.ranges.size() == 2);
  CHECK(unroutable.empty());
}

TEST_CASE_METHOD(fixture, "split reports every unroutable slice with samples",
                 "[split]") {
  batch.sequence = 1;
  add(7);
  add(6);
  add(7);
  splitter sp;
  std::vector<routed_write> out;
  std::vector<uint32_t> unroutable;
  sp.split(batch, table, out, unroutable);
  CHECK(out.empty());
  CHECK(unroutable == std::vector<uint32_t>{6, 7});
}

TEST_CASE_METHOD(fixture, "a splitter can be reused for the next batch", "[split]") {
  splitter sp;
  std::vector<routed_write> out;
  std::vector<uint32_t> unroutable;

  batch.sequence = 1;
  add(0);
  add(1);
  add(6);
  sp.split(batch, table, out, unroutable);
  REQUIRE(out.size() == 2);
  REQUIRE(unroutable.size() == 1);

  wire::keyed_batch second;
  std::swap(second, batch);
  batch.producer = "p2";
  batch.sequence = 2;
  add(5);
  add(5);
  sp.split(batch, table, out, unroutable);
  REQUIRE(out.size() == 1);
  CHECK(out[0].shard == shard_b);
  CHECK(out[0].write.sequence == 2);
  CHECK(out[0].write.producer == "p2");
  REQUIRE(out[0].write.samples.size() == 2);
  REQUIRE(out[0].write.ranges.size() == 1);
  CHECK(out[0].write.ranges[0].begin == 0);
  CHECK(out[0].write.ranges[0].end == 2);
  CHECK(out[0].write.key(out[0].write.samples[0]) == batch.key(batch.samples[0]));
  CHECK(out[0].write.key(out[0].write.samples[1]) == batch.key(batch.samples[1]));
  CHECK(unroutable.empty());

  // An empty batch routes nowhere.
  wire::keyed_batch empty;
  sp.split(empty, table, out, unroutable);
  CHECK(out.empty());
  CHECK(unroutable.empty());
}
