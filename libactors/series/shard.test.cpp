#include "series/shard.hpp"

#include <atomic>
#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <catch2/catch.hpp>

#include "directory/directory.hpp"
#include "keys/slicing.hpp"
#include "tether/tether.hpp"

using namespace std::chrono_literals;
using namespace tether;

namespace {

constexpr uint32_t slices = 8;
constexpr int64_t window_ms = 3600 * 1000; // ticks never fire during a test

struct shard_fixture {
  shard_fixture() : sys(init(cfg)) {
    directory::directory_config dc;
    dc.members.push_back(member{"n0", "127.0.0.1:1", true});
    dc.slice_count = slices;
    auto table = directory::initial_table(dc);
    dir = directory::spawn_directory(sys, dc);
    series::shard_config sc;
    sc.node_name = "n0";
    sc.window_ms = window_ms;
    sc.directory = dir;
    sc.counters = std::make_shared<series::node_counters>();
    sc.initial = table;
    sc.clock = [this] { return clock.load(); };
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
  series::shard_write gauge_write(const std::string& key, uint64_t seq, double v) {
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
    s.timestamp_ms = clock.load();
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

  std::atomic<int64_t> clock{10 * window_ms + 5};
  caf::actor_system_config cfg;
  caf::actor_system sys;
  directory_actor dir;
  series::shard_actor shard;
};

} // namespace

TEST_CASE_METHOD(shard_fixture,
                 "a write of the next window closes the previous one first") {
  caf::scoped_actor self{sys};
  const std::string key = "temp";
  series::key_route route{key, keys::slice_of(keys::key_hash(key), slices)};
  self->request(shard, 5s, subscribe_atom::value, std::vector<series::key_route>{route},
                caf::actor{self})
    .receive([](std::vector<series_view>&) {},
             [&](caf::error& err) { FAIL(to_string(err)); });
  REQUIRE(write(self, gauge_write(key, 1, 3)).applied == 1);
  REQUIRE(write(self, gauge_write(key, 2, 4)).applied == 1);
  // The wall clock passes into the next window; no tick has been processed (ticks
  // could queue behind writes under load). The next write must not hide window 10.
  clock = 11 * window_ms + 1;
  REQUIRE(write(self, gauge_write(key, 3, 100)).applied == 1);
  bool got = false;
  self->receive(
    [&](window_atom, int64_t start, int64_t end, std::vector<series_view>& vs) {
      got = true;
      CHECK(start == 10 * window_ms);
      CHECK(end == 11 * window_ms);
      REQUIRE(vs.size() == 1);
      CHECK(vs[0].key == key);
      CHECK(vs[0].last == 4); // the state at the end of window 10
      CHECK(vs[0].count == 2);
    },
    caf::after(5s) >> [] {});
  CHECK(got);
}

TEST_CASE_METHOD(shard_fixture, "windows without samples for a key send nothing") {
  caf::scoped_actor self{sys};
  const std::string key = "quiet";
  series::key_route route{key, keys::slice_of(keys::key_hash(key), slices)};
  self->request(shard, 5s, subscribe_atom::value, std::vector<series::key_route>{route},
                caf::actor{self})
    .receive([](std::vector<series_view>&) {},
             [&](caf::error& err) { FAIL(to_string(err)); });
  clock = 12 * window_ms;
  REQUIRE(write(self, gauge_write("other", 1, 1)).applied == 1);
  bool got = false;
  self->receive([&](window_atom, int64_t, int64_t, std::vector<series_view>&) {
                  got = true;
                },
                caf::after(200ms) >> [] {});
  CHECK_FALSE(got);
}

TEST_CASE_METHOD(shard_fixture, "a slice at a stale epoch refuses writes") {
  caf::scoped_actor self{sys};
  auto w = gauge_write("k", 1, 1);
  w.ranges[0].epoch = 7;
  auto r = write(self, std::move(w));
  CHECK(r.code == errc::unavailable);
  CHECK(r.applied == 0);
}
