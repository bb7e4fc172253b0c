#include "series/slice_snapshot.hpp"

#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <catch2/catch.hpp>

#include "keys/slicing.hpp"
#include "shard/message_types.hpp"
#include "series/slice_state.hpp"
#include "tether/tether.hpp"

using namespace tether;
using namespace tether::series;

namespace {

constexpr uint32_t slice_id = 3;
constexpr int64_t window = 10000; // the series default

/// A shard write of one slice, built sample by sample.
struct batch {
  shard_write w;

  batch(std::string producer, uint64_t sequence) {
    w.producer = std::move(producer);
    w.sequence = sequence;
  }

  batch& add(std::string_view key, tether::kind k, double value, int64_t ts,
             counter_mode mode = counter_mode::delta, uint64_t input = 0) {
    wire::keyed_sample s;
    s.key_offset = static_cast<uint32_t>(w.keys.size());
    s.key_size = static_cast<uint32_t>(key.size());
    w.keys.append(key.data(), key.size());
    s.hash = keys::key_hash(key);
    s.input_hash = input != 0 ? input : s.hash;
    s.slice = slice_id;
    s.kind = k;
    s.mode = mode;
    s.value = value;
    s.timestamp_ms = ts;
    w.samples.push_back(s);
    return *this;
  }

  slice_range all() const {
    return slice_range{slice_id, 1, 0, static_cast<uint32_t>(w.samples.size())};
  }
};

apply_context context_at(int64_t now) {
  apply_context ctx;
  ctx.now_ms = now;
  ctx.lateness_ms = 5000;
  ctx.accuracy = 0.01;
  ctx.staleness_ms = 60000;
  return ctx;
}

slice_state::apply_result apply(slice_state& sl, const batch& b, int64_t now) {
  std::vector<opened_window> opened;
  return sl.apply(b.w, b.all(), context_at(now), opened);
}

/// Every kind: delta and cumulative counters (two inputs, a reset), a gauge and a
/// histogram with enough values to fill many sketch buckets; samples in windows 0,
/// 1 and 2.
std::vector<batch> first_batches() {
  std::vector<batch> out;
  auto& b1 = out.emplace_back("p1", 1);
  b1.add("req", kind::counter, 2, 100)
    .add("bytes", kind::counter, 1000, 200, counter_mode::cumulative, 11)
    .add("bytes", kind::counter, 50, 300, counter_mode::cumulative, 12)
    .add("temp", kind::gauge, 21.5, 400);
  for (int i = 1; i <= 200; ++i)
    b1.add("latency", kind::histogram, i * 0.37, 500 + i);
  auto& b2 = out.emplace_back("p2", 7);
  b2.add("req", kind::counter, 3, window + 10)
    .add("bytes", kind::counter, 1300, window + 20, counter_mode::cumulative, 11)
    .add("bytes", kind::counter, 20, window + 30, counter_mode::cumulative, 12) // reset
    .add("temp", kind::gauge, 19.25, window + 40)
    .add("latency", kind::histogram, 1e6, window + 50)
    .add("latency", kind::histogram, -4, window + 60);
  auto& b3 = out.emplace_back("p1", 2);
  b3.add("req", kind::counter, 5, 2 * window + 1)
    .add("temp", kind::gauge, 22, 2 * window + 2)
    .add("latency", kind::histogram, 0, 2 * window + 3);
  return out;
}

/// Later batches: new and known keys, a retried sequence, a sequence gap, a
/// cumulative input's next value, a late sample.
std::vector<batch> later_batches() {
  std::vector<batch> out;
  auto& b1 = out.emplace_back("p1", 4);
  b1.add("req", kind::counter, 1, 2 * window + 100)
    .add("bytes", kind::counter, 1500, 2 * window + 110, counter_mode::cumulative, 11)
    .add("new", kind::gauge, 1, 2 * window + 120)
    .add("latency", kind::histogram, 12.5, 2 * window + 130)
    .add("req", kind::counter, 9, 100); // window 0 has closed: late
  out.emplace_back("p2", 7).add("req", kind::counter, 100, 2 * window + 140);
  out.emplace_back("p3", 1).add("latency", kind::histogram, 3, 3 * window + 5);
  return out;
}

const std::vector<std::string> all_keys = {"req", "bytes", "temp", "latency", "new"};
const std::vector<double> quantiles = {0, 0.5, 0.9, 0.99, 1};

/// Closes the open windows of every series that start before `until`, like a shard.
std::vector<window_view> close_before(slice_state& sl, int64_t until) {
  std::vector<window_view> out;
  for (auto& key : all_keys) {
    auto* e = sl.find(key);
    if (e == nullptr)
      continue;
    while (!e->state.open().empty() && e->state.open()[0].start < until)
      out.push_back(e->state.close(e->state.open()[0].start, quantiles));
  }
  return out;
}

struct fixture {
  fixture() : sys(init(cfg)) {
  }

  static caf::actor_system_config& init(caf::actor_system_config& c) {
    configure(c);
    add_message_types(c);
    return c;
  }

  template <class T>
  std::vector<char> bytes_of(T& x) {
    std::vector<char> buf;
    caf::binary_serializer sink{sys, buf};
    REQUIRE(!sink(x));
    return buf;
  }

  slice_snapshot round_trip(slice_snapshot& snap) {
    auto buf = bytes_of(snap);
    slice_snapshot out;
    caf::binary_deserializer source{sys, buf};
    REQUIRE(!source(out));
    return out;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
};

/// Loads into `st` the bytes of its own scalars with the given open windows and
/// sketches, as a foreign node might send them.
void load_foreign(series_state& st, std::vector<window_agg> windows,
                  std::vector<window_sketch> sketches) {
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  REQUIRE(!sink(st.kind, st.window_ms, st.rule, st.total, st.closed_total, st.last,
                st.min, st.max, st.sum, st.count, st.updated_ms, st.closed_until,
                st.last_closed, windows, sketches, std::vector<input_state>{},
                std::vector<std::pair<double, double>>{}));
  caf::binary_deserializer source{nullptr, buf};
  REQUIRE(!source(st));
}

caf::behavior idle() {
  return {[](int) {}};
}

} // namespace

TEST_CASE_METHOD(fixture,
                 "a restored slice applies further batches exactly like the original",
                 "[slice_snapshot]") {
  slice_state original{slice_id};
  original.epoch = 1;
  for (auto& b : first_batches())
    REQUIRE(apply(original, b, 1000).code == errc::none);
  // The shard closes window 0: closed windows and closed_until travel too.
  CHECK(close_before(original, window).size() == 4);

  auto sink = sys.spawn(idle);
  auto snap = original.snapshot(9);
  snap.subscribers.push_back(subscription_snapshot{"temp", {sink}});
  auto loaded = round_trip(snap);
  CHECK(loaded.slice == slice_id);
  CHECK(loaded.epoch == 9);
  REQUIRE(loaded.subscribers.size() == 1);
  CHECK(loaded.subscribers[0].key == "temp");
  CHECK(loaded.subscribers[0].sinks == std::vector<caf::actor>{sink});
  REQUIRE(loaded.series.size() == 4);
  CHECK(loaded.dedup.size() == 2);

  std::string error;
  auto restored = slice_state::restore(loaded, error);
  REQUIRE(restored);
  CHECK(error.empty());
  CHECK(restored->id() == slice_id);
  CHECK(restored->epoch == 9);
  CHECK(restored->series_count() == original.series_count());
  // The whole state, sketches, inputs and dedup windows included, is equal.
  auto mine = original.snapshot(9);
  auto theirs = restored->snapshot(9);
  CHECK(bytes_of(mine) == bytes_of(theirs));

  // A retried (producer, sequence) stays a duplicate.
  for (auto& b : first_batches()) {
    auto r = apply(*restored, b, 1000);
    CHECK(r.duplicate);
    CHECK(r.applied == 0);
  }

  for (auto& b : later_batches()) {
    auto x = apply(original, b, 2 * window);
    auto y = apply(*restored, b, 2 * window);
    CHECK(x.applied == y.applied);
    CHECK(x.late == y.late);
    CHECK(x.duplicate == y.duplicate);
    CHECK(x.code == y.code);
  }
  for (auto& key : all_keys) {
    series_view x;
    series_view y;
    original.find(key)->state.fill(x);
    restored->find(key)->state.fill(y);
    CHECK(bytes_of(x) == bytes_of(y));
  }
  auto closed_x = close_before(original, 10 * window);
  auto closed_y = close_before(*restored, 10 * window);
  REQUIRE(closed_x.size() == closed_y.size());
  CHECK(closed_x.size() == 10);
  for (size_t i = 0; i < closed_x.size(); ++i)
    CHECK(bytes_of(closed_x[i]) == bytes_of(closed_y[i]));
  // The histogram's window 0 closed before the snapshot; window 1's quantiles come
  // from a sketch that crossed the wire.
  auto latency = restored->find("latency")->state.last_window();
  CHECK(latency.quantiles.size() == quantiles.size());
  mine = original.snapshot(9);
  theirs = restored->snapshot(9);
  CHECK(bytes_of(mine) == bytes_of(theirs));
  caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(fixture,
                 "a series crosses the wire with its windows, sketches and inputs",
                 "[slice_snapshot]") {
  series_state st;
  st.kind = kind::histogram;
  st.window_ms = 1000;
  // Three open windows (one beyond the inline two), each with a sketch.
  for (int64_t ts : {2500, 500, 1500, 520, 2600})
    for (double x : {0.001, 5.0, -7.5, 1e12})
      REQUIRE(st.apply(wire::keyed_sample{0, 0, 0, 0, 0, 0, 0, kind::histogram,
                                          counter_mode::delta, x, ts},
                       0, 1'000'000, 0.02)
              != apply_outcome::late);
  REQUIRE(st.open().size() == 3);
  auto buf = bytes_of(st);
  series_state loaded;
  caf::binary_deserializer source{sys, buf};
  REQUIRE(!source(loaded));
  REQUIRE(loaded.open().size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    auto start = st.open()[i].start;
    CHECK(loaded.open()[i].start == start);
    CHECK(loaded.open()[i].count == st.open()[i].count);
    REQUIRE(loaded.sketch(start) != nullptr);
    CHECK(*loaded.sketch(start) == *st.sketch(start));
  }
  // Copies own their windows and sketches.
  series_state copy{st};
  copy.close(0, {0.5});
  CHECK(copy.open().size() == 2);
  CHECK(st.open().size() == 3);
  CHECK(st.sketch(0) != nullptr);

  series_state counter;
  counter.kind = kind::counter;
  auto sample = wire::keyed_sample{};
  sample.kind = kind::counter;
  sample.mode = counter_mode::cumulative;
  for (uint64_t input = 1; input <= 3; ++input) {
    sample.input_hash = input;
    sample.value = 10.0 * input;
    counter.apply(sample, 0, 1'000'000, 0.01);
  }
  auto counter_buf = bytes_of(counter);
  caf::binary_deserializer counter_source{sys, counter_buf};
  REQUIRE(!counter_source(loaded)); // into a state that had windows and sketches
  CHECK(loaded.inputs().size() == 3);
  CHECK(loaded.open().size() == 1);
  CHECK(loaded.sketch(0) == nullptr);
  CHECK(bytes_of(loaded) == counter_buf);
}

TEST_CASE("restore refuses snapshots that no slice produced", "[slice_snapshot]") {
  auto snap_with = [](auto edit) {
    slice_snapshot snap;
    snap.slice = slice_id;
    snap.epoch = 2;
    snap.series.push_back(series_snapshot{"a", {}});
    snap.series.back().state.kind = kind::gauge;
    snap.series.push_back(series_snapshot{"b", {}});
    snap.series.back().state.kind = kind::counter;
    snap.dedup.push_back(producer_snapshot{"p", {}});
    edit(snap);
    return snap;
  };
  std::string error;
  auto good = snap_with([](slice_snapshot&) {});
  CHECK(check(good).empty());
  CHECK(slice_state::restore(good, error));

  auto zero_window = snap_with([](slice_snapshot& s) { s.series[0].state.window_ms = 0; });
  CHECK_FALSE(slice_state::restore(zero_window, error));
  CHECK(error.find("window length 0") != std::string::npos);

  auto bad_kind = snap_with(
    [](slice_snapshot& s) { s.series[1].state.kind = kind::unspecified; });
  CHECK_FALSE(slice_state::restore(bad_kind, error));
  CHECK(error.find("unknown kind") != std::string::npos);

  auto twice = snap_with([](slice_snapshot& s) { s.series[1].key = "a"; });
  CHECK_FALSE(slice_state::restore(twice, error));
  CHECK(error.find("occurs twice") != std::string::npos);

  auto unordered = snap_with([](slice_snapshot& s) {
    // Bytes no series produced: two open windows, the later one first.
    auto& st = s.series[0].state;
    load_foreign(st, {{20000, 1}, {10000, 1}}, {});
    REQUIRE(st.open().size() == 2);
  });
  CHECK_FALSE(slice_state::restore(unordered, error));
  CHECK(error.find("out of order") != std::string::npos);

  auto stray_sketch = snap_with([](slice_snapshot& s) {
    // A gauge with a sketch for a window it does not have open.
    load_foreign(s.series[0].state, {}, {{30000, ddsketch{}}});
  });
  CHECK_FALSE(slice_state::restore(stray_sketch, error));
  CHECK(error.find("sketches without") != std::string::npos);

  auto producers = snap_with(
    [](slice_snapshot& s) { s.dedup.push_back(producer_snapshot{"p", {}}); });
  CHECK_FALSE(slice_state::restore(producers, error));
  CHECK(error.find("producer 'p'") != std::string::npos);
}
