#include "shard/shard.hpp"

#include <atomic>
#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <catch2/catch.hpp>

#include "directory/directory.hpp"
#include "series/input_tracker.hpp"
#include "keys/slicing.hpp"
#include "tether/tether.hpp"

using namespace std::chrono_literals;
using namespace tether;

namespace {

constexpr uint32_t slices = 8;
constexpr int64_t window_ms = 1000;
constexpr int64_t lateness_ms = 500;

struct shard_fixture {
  /// A shard without rules, or with `rules_json` and input tracking.
  explicit shard_fixture(const char* rules_json = nullptr) : sys(init(cfg)) {
    directory::directory_config dc;
    dc.members.push_back(member{"n0", "127.0.0.1:1", true});
    dc.slice_count = slices;
    auto table = directory::initial_table(dc);
    dir = directory::spawn_directory(sys, dc);
    series::shard_config sc;
    sc.node_name = "n0";
    sc.window_ms = window_ms;
    sc.lateness_ms = lateness_ms;
    sc.tick_ms = 3600 * 1000; // ticks never fire: time moves only with `clock`
    sc.directory = dir;
    sc.counters = std::make_shared<series::node_counters>();
    sc.initial = table;
    sc.clock = [this] { return clock.load(); };
    if (rules_json != nullptr) {
      std::string error;
      auto set = rules::rule_set::parse(rules_json, {}, error);
      REQUIRE(set);
      sc.rules = std::make_shared<rules::rule_cache>(set);
      sc.inputs = inputs;
    }
    shard = series::spawn_shard(sys, sc);
  }

  ~shard_fixture() {
    caf::anon_send_exit(shard, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(dir, caf::exit_reason::user_shutdown);
  }

  static caf::actor_system_config& init(caf::actor_system_config& c) {
    configure(c);
    return c;
  }

  /// A shard write of gauge samples for one key, all on that key's slice.
  /// A shard write of one gauge sample at time `ts` (default: the clock).
  series::shard_write gauge_write(const std::string& key, uint64_t seq, double v,
                                  int64_t ts = -1) {
    series::shard_write w;
    w.producer = "p";
    w.sequence = seq;
    w.keys = key;
    wire::keyed_sample s;
    s.hash = keys::key_hash(key);
    s.slice = keys::slice_of(s.hash, slices);
    s.key_size = static_cast<uint32_t>(key.size());
    s.kind = kind::gauge;
    s.value = v;
    s.timestamp_ms = ts >= 0 ? ts : clock.load();
    s.input_hash = s.hash;
    s.window_ms = window_ms;
    w.samples.push_back(s);
    w.ranges.push_back(series::slice_range{s.slice, 1, 0, 1});
    return w;
  }

  series::shard_write_result write(caf::scoped_actor& self, series::shard_write w) {
    series::shard_write_result out;
    self->request(shard, 5s, write_atom::value, std::move(w))
      .receive([&](series::shard_write_result& r) { out = r; },
               [&](caf::error& err) { FAIL(to_string(err)); });
    return out;
  }

  void subscribe(caf::scoped_actor& self, const std::string& key) {
    series::key_route route{key, keys::slice_of(keys::key_hash(key), slices)};
    self->request(shard, 5s, subscribe_atom::value,
                  std::vector<series::key_route>{route}, caf::actor{self})
      .receive([](std::vector<series_view>&) {},
               [&](caf::error& err) { FAIL(to_string(err)); });
  }

  std::shared_ptr<series::input_counts> inputs
    = std::make_shared<series::input_counts>();
  std::atomic<int64_t> clock{10 * window_ms + 5};
  caf::actor_system_config cfg;
  caf::actor_system sys;
  directory_actor dir;
  series::shard_actor shard;
};

} // namespace

TEST_CASE_METHOD(shard_fixture,
                 "a window closes once, lateness after its end, before later writes") {
  caf::scoped_actor self{sys};
  const std::string key = "temp";
  subscribe(self, key);
  REQUIRE(write(self, gauge_write(key, 1, 3, 10 * window_ms + 10)).applied == 1);
  REQUIRE(write(self, gauge_write(key, 2, 4, 10 * window_ms + 20)).applied == 1);
  // Window 10 ends at 11 s and closes at 11.5 s. The clock passes that; no tick
  // has run (ticks may queue behind writes under load): the next write closes it
  // before it applies, so the late sample below cannot slip into window 10.
  clock = 11 * window_ms + lateness_ms + 1;
  auto r = write(self, gauge_write(key, 3, 100, 10 * window_ms + 30));
  CHECK(r.applied == 0);
  CHECK(r.late == 1);
  REQUIRE(write(self, gauge_write(key, 4, 7, 11 * window_ms + 600)).applied == 1);
  int updates = 0;
  self->receive_while([&] { return updates < 1; })(
    [&](window_atom, std::vector<series_view>& vs) {
      ++updates;
      REQUIRE(vs.size() == 1);
      CHECK(vs[0].key == key);
      CHECK(vs[0].window.start_ms == 10 * window_ms);
      CHECK(vs[0].window.end_ms == 11 * window_ms);
      CHECK(vs[0].window.count == 2);
      CHECK(vs[0].window.last == 4);
      CHECK(vs[0].window.min == 3);
    },
    caf::after(5s) >> [&] { FAIL("no window update"); });
  // Window 11 is still open: nothing else arrives.
  bool more = false;
  self->receive([&](window_atom, std::vector<series_view>&) { more = true; },
                caf::after(200ms) >> [] {});
  CHECK_FALSE(more);
}

TEST_CASE_METHOD(shard_fixture, "windows without samples for a key send nothing") {
  caf::scoped_actor self{sys};
  subscribe(self, "quiet");
  REQUIRE(write(self, gauge_write("other", 1, 1)).applied == 1);
  clock = 20 * window_ms;
  REQUIRE(write(self, gauge_write("other", 2, 1)).applied == 1);
  bool got = false;
  self->receive([&](window_atom, std::vector<series_view>&) { got = true; },
                caf::after(200ms) >> [] {});
  CHECK_FALSE(got);
}

TEST_CASE_METHOD(shard_fixture, "a read of all series returns the closed windows") {
  caf::scoped_actor self{sys};
  REQUIRE(write(self, gauge_write("a", 1, 1)).applied == 1);
  REQUIRE(write(self, gauge_write("b", 2, 2)).applied == 1);
  clock = 30 * window_ms;
  REQUIRE(write(self, gauge_write("c", 3, 3)).applied == 1); // closes a and b
  std::vector<series_view> all;
  self->request(shard, 5s, read_atom::value)
    .receive([&](series::shard_scrape& sc) {
               all = sc.series;
               uint64_t total = 0;
               for (auto& st : sc.slices)
                 total += st.series;
               CHECK(total == 3);
             },
             [&](caf::error& err) { FAIL(to_string(err)); });
  REQUIRE(all.size() == 2);
  for (auto& v : all)
    CHECK(v.window.end_ms == 11 * window_ms);
}

TEST_CASE_METHOD(shard_fixture, "a slice at a stale epoch refuses writes") {
  caf::scoped_actor self{sys};
  auto w = gauge_write("k", 1, 1);
  w.ranges[0].epoch = 7;
  (void) lateness_ms;
  auto r = write(self, std::move(w));
  CHECK(r.code == errc::unavailable);
  CHECK(r.applied == 0);
}

namespace {

struct limited_fixture : shard_fixture {
  limited_fixture()
    : shard_fixture(R"({"max_input_series_per_node": 3, "rules": [
        {"name": "by_pod", "match": "m", "without": ["pod"], "max_input_series": 2}]})") {
  }

  /// A sample of output `key` from input `input`, shaped by rule `rule` (1-based).
  series::shard_write input_write(const std::string& key, uint64_t seq, uint64_t input,
                                  uint32_t rule) {
    auto w = gauge_write(key, seq, 1);
    w.samples[0].input_hash = input;
    w.samples[0].rule = rule;
    return w;
  }
};

} // namespace

TEST_CASE_METHOD(limited_fixture, "input series limits per rule and per node") {
  caf::scoped_actor self{sys};
  CHECK(write(self, input_write("m", 1, 101, 1)).code == errc::none);
  CHECK(write(self, input_write("m", 2, 102, 1)).code == errc::none);
  // A third input of the rule: refused with a message naming the rule, nothing applied.
  auto r = write(self, input_write("m", 3, 103, 1));
  CHECK(r.code == errc::input_limit);
  CHECK(r.applied == 0);
  CHECK(r.message.find("rule 'by_pod'") != std::string::npos);
  // Known inputs still write.
  CHECK(write(self, input_write("m", 4, 101, 1)).applied == 1);
  // The node limit (3) counts series without a rule too.
  CHECK(write(self, input_write("x", 5, 201, 0)).code == errc::none);
  auto n = write(self, input_write("y", 6, 202, 0));
  CHECK(n.code == errc::input_limit);
  CHECK(n.message.find("max_input_series_per_node") != std::string::npos);
  CHECK(inputs->total.load() == 3);
  CHECK(inputs->per_rule[0].load() == 2);
}

TEST_CASE_METHOD(shard_fixture,
                 "windows of different lengths in one slice close at their own ends, "
                 "once each") {
  caf::scoped_actor self{sys};
  // Two keys of one slice, and one of another to move the clock with.
  std::vector<std::string> same;
  std::string other;
  auto first = keys::slice_of(keys::key_hash("k0"), slices);
  for (int i = 0; same.size() < 2 || other.empty(); ++i) {
    auto key = "k" + std::to_string(i);
    if (keys::slice_of(keys::key_hash(key), slices) == first) {
      if (same.size() < 2)
        same.push_back(key);
    } else if (other.empty()) {
      other = key;
    }
  }
  subscribe(self, same[0]);
  subscribe(self, same[1]);
  auto fast = gauge_write(same[0], 1, 1, 10 * window_ms + 5);
  auto slow = gauge_write(same[1], 2, 2, 10 * window_ms + 5);
  slow.samples[0].window_ms = 4 * window_ms; // [8 s, 12 s)
  REQUIRE(write(self, fast).applied == 1);
  REQUIRE(write(self, slow).applied == 1);
  auto next = [&] {
    series_view out;
    self->receive(
      [&](window_atom, std::vector<series_view>& vs) {
        REQUIRE(vs.size() == 1);
        out = vs[0];
      },
      caf::after(5s) >> [] { FAIL("no window update"); });
    return out;
  };
  uint64_t seq = 10;
  clock = 11 * window_ms + lateness_ms + 1; // the 1 s window is due
  REQUIRE(write(self, gauge_write(other, ++seq, 0)).applied == 1);
  auto v = next();
  CHECK(v.key == same[0]);
  CHECK(v.window.start_ms == 10 * window_ms);
  CHECK(v.window.end_ms == 11 * window_ms);
  clock = 12 * window_ms + lateness_ms + 1; // the 4 s window is due
  REQUIRE(write(self, gauge_write(other, ++seq, 0)).applied == 1);
  v = next();
  CHECK(v.key == same[1]);
  CHECK(v.window.start_ms == 8 * window_ms);
  CHECK(v.window.end_ms == 12 * window_ms);
  // Nothing is due twice.
  clock = 20 * window_ms;
  REQUIRE(write(self, gauge_write(other, ++seq, 0)).applied == 1);
  bool more = false;
  self->receive([&](window_atom, std::vector<series_view>&) { more = true; },
                caf::after(200ms) >> [] {});
  CHECK_FALSE(more);
}
