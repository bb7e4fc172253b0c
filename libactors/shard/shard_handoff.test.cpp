#include "shard/shard.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <catch2/catch.hpp>

#include "directory/directory.hpp"
#include "events/event_log.hpp"
#include "keys/slicing.hpp"
#include "shard/message_types.hpp"
#include "shard/shard_test_support.hpp"
#include "tether/tether.hpp"

using namespace std::chrono_literals;
using namespace tether;
using namespace tether::series::testing;
using tether::series::shard_handoff_actor;
using tether::series::shard_import_actor;

namespace {

struct handoff_fixture {
  handoff_fixture() : sys(init(cfg)) {
    directory::directory_config dc;
    dc.members = {member{"n0", "127.0.0.1:1", true}, member{"n1", "127.0.0.1:2", true}};
    dc.slice_count = slices;
    dir = directory::spawn_directory(sys, dc);
    a = spawn("n0", counters_a);
    b = spawn("n1", counters_b);
    sink = sys.spawn(collector, log);
  }

  ~handoff_fixture() {
    for (auto& x : {caf::actor_cast<caf::actor>(a), caf::actor_cast<caf::actor>(b),
                    caf::actor_cast<caf::actor>(dir), sink})
      caf::anon_send_exit(x, caf::exit_reason::user_shutdown);
  }

  static caf::actor_system_config& init(caf::actor_system_config& c) {
    configure(c);
    series::add_message_types(c);
    return c;
  }

  /// Members n0 and n1; every slice's primary is `primary` at `epoch`.
  static assignment_table table(uint64_t version, int32_t primary, uint64_t epoch) {
    assignment_table t;
    t.version = version;
    t.members = {member{"n0", "127.0.0.1:1", true}, member{"n1", "127.0.0.1:2", true}};
    t.slices.resize(slices);
    for (auto& s : t.slices) {
      s.primary = primary;
      s.epoch = epoch;
    }
    return t;
  }

  shard_handoff_actor spawn(const std::string& name,
                            std::shared_ptr<series::node_counters> counters,
                            uint32_t timeout_ms = 5000) {
    auto sc = fixture_config(name, dir, std::move(counters), [this] { return clock.load(); });
    sc.initial = table(100, 0, 1); // n0 serves every slice at epoch 1
    sc.request_timeout_ms = timeout_ms;
    if (name == "n1")
      sc.events = events_b;
    return series::spawn_shard(sys, sc);
  }

  /// A write of counter deltas of 1 at the clock, one range per slice.
  series::shard_write counter_write(const std::string& producer, uint64_t seq,
                                    std::vector<std::string> keys, uint64_t epoch,
                                    int64_t ts = -1) {
    return counter_write_at(producer, seq, std::move(keys), epoch, 1,
                            ts >= 0 ? ts : clock.load());
  }

  template <class Handle>
  series::shard_write_result write(const Handle& shard, series::shard_write w) {
    series::shard_write_result out;
    self->request(shard, 5s, write_atom::value, std::move(w))
      .receive([&](series::shard_write_result& r) { out = r; },
               [&](caf::error& err) { FAIL(to_string(err)); });
    return out;
  }

  /// Reads a key; `found == false` with the error's message as `node` on failure.
  template <class Handle>
  series_view read(const Handle& shard, const std::string& key) {
    series_view out;
    series::key_route k{key, keys::slice_of(keys::key_hash(key), slices)};
    self->request(shard, 5s, read_atom::value, k)
      .receive([&](series_view& v) { out = v; },
               [&](caf::error& err) { out.node = to_string(err); });
    return out;
  }

  void subscribe(const shard_handoff_actor& shard, std::vector<std::string> keys) {
    std::vector<series::key_route> routes;
    for (auto& key : keys)
      routes.push_back({key, keys::slice_of(keys::key_hash(key), slices)});
    self->request(shard, 5s, subscribe_atom::value, routes, sink)
      .receive([](std::vector<series_view>&) {},
               [&](caf::error& err) { FAIL(to_string(err)); });
  }

  caf::expected<uint64_t> export_slice(const shard_handoff_actor& from, uint32_t s,
                                       uint64_t epoch, const shard_import_actor& to) {
    caf::expected<uint64_t> out{caf::sec::request_timeout};
    self->request(from, 10s, series::export_atom::value, s, epoch, to)
      .receive([&](uint64_t n) { out = n; },
               [&](caf::error& err) { out = std::move(err); });
    return out;
  }

  std::vector<series::slice_stat> slices_of(const shard_handoff_actor& shard) {
    std::vector<series::slice_stat> out;
    self->request(shard, 5s, read_atom::value)
      .receive([&](series::shard_scrape& sc) { out = sc.slices; },
               [&](caf::error& err) { FAIL(to_string(err)); });
    return out;
  }

  bool serves(const shard_handoff_actor& shard, uint32_t s, uint64_t epoch) {
    for (auto& st : slices_of(shard))
      if (st.slice == s)
        return st.epoch == epoch;
    return false;
  }

  /// A key written only to see when a shard's windows have all arrived.
  struct marker {
    shard_handoff_actor shard;
    std::string key;
    uint64_t epoch;
  };

  /// Closes every window of the markers' shards up to the clock + 10 windows. Each
  /// marker's window closes in the same run as the others of its shard, so once the
  /// log holds every marker it holds everything the shards sent.
  void flush(const std::vector<marker>& markers) {
    auto ts = clock.load();
    for (auto& m : markers) {
      subscribe(m.shard, {m.key});
      REQUIRE(write(m.shard, counter_write("flush", 1, {m.key}, m.epoch, ts)).applied
              == 1);
    }
    clock += 10 * window_ms;
    for (auto& m : markers)
      write(m.shard, counter_write("flush", 2, {m.key}, m.epoch));
    REQUIRE(log->wait([&](const std::vector<series_view>& vs) {
      size_t seen = 0;
      for (auto& v : vs)
        for (auto& m : markers)
          seen += v.key == m.key;
      return seen == markers.size();
    }));
  }

  std::atomic<int64_t> clock{10 * window_ms + 5};
  /// The role changes n1 logs.
  std::shared_ptr<events::event_log> events_b
    = std::make_shared<events::event_log>("n1", 64, nullptr);
  std::shared_ptr<series::node_counters> counters_a
    = std::make_shared<series::node_counters>();
  std::shared_ptr<series::node_counters> counters_b
    = std::make_shared<series::node_counters>();
  std::shared_ptr<window_log> log = std::make_shared<window_log>();
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self{sys}; ///< sends every request of the tests, in order
  directory_actor dir;
  shard_handoff_actor a;
  shard_handoff_actor b;
  caf::actor sink;
};

} // namespace

TEST_CASE_METHOD(handoff_fixture,
                 "a slice moves between shards: every write applied once, every "
                 "window emitted once",
                 "[shard][handoff]") {
  constexpr uint32_t moving = 3;
  constexpr uint32_t staying = 5;
  auto moved_keys = keys_on(moving, 3);
  auto kept_keys = keys_on(staying, 2);
  auto all = moved_keys;
  all.insert(all.end(), kept_keys.begin(), kept_keys.end());
  subscribe(a, all);
  // Before: windows 10 and 11 open on the source.
  uint64_t seq = 0;
  uint64_t batches = 0;
  for (; seq < 4; ++seq, ++batches)
    REQUIRE(write(a, counter_write("p", seq + 1, all, 1)).applied == all.size());
  REQUIRE(write(a, counter_write("p", ++seq, all, 1, 11 * window_ms + 1)).applied
          == all.size());
  ++batches;
  CHECK(counters_a->primary_slices == slices);
  CHECK(counters_a->series == all.size());

  // The destination holds the import back: the slice stays frozen meanwhile.
  auto held = std::make_shared<std::promise<void>>();
  auto held_future = held->get_future();
  auto gate = sys.spawn(relay, caf::actor_cast<caf::actor>(b), held, false);
  auto exported = self->request(a, 10s, series::export_atom::value, moving, uint64_t{2},
                                caf::actor_cast<shard_import_actor>(gate));
  REQUIRE(held_future.wait_for(5s) == std::future_status::ready);
  // Window 10 falls due while the slice is frozen: the writes below close it on the
  // source for the kept keys only; the destination closes it for the moved ones.
  clock = 11 * window_ms + lateness_ms + 1;
  // During: writes (one retried) and a read of the frozen slice.
  using write_handle
    = decltype(self->request(a, 10s, write_atom::value, series::shard_write{}));
  std::vector<write_handle> during;
  for (int i = 0; i < 3; ++i, ++batches)
    during.push_back(self->request(a, 10s, write_atom::value,
                                   counter_write("p", ++seq, all, 1)));
  during.push_back(
    self->request(a, 10s, write_atom::value, counter_write("p", seq, all, 1)));
  auto read_during = self->request(
    a, 10s, read_atom::value, series::key_route{moved_keys[0], moving});
  caf::anon_send(gate, release_atom::value);
  uint64_t moved = 0;
  exported.receive([&](uint64_t n) { moved = n; },
                   [&](caf::error& err) { FAIL(to_string(err)); });
  CHECK(moved == moved_keys.size());
  // Each write got one reply for both of its slices.
  for (size_t i = 0; i < during.size(); ++i)
    during[i].receive(
      [&](series::shard_write_result& r) {
        CHECK(r.code == errc::none);
        if (i + 1 < during.size()) {
          CHECK(r.applied == all.size());
          CHECK(r.duplicate_ranges == 0);
        } else {
          CHECK(r.applied == 0);
          CHECK(r.duplicate_ranges == 2); // the retry, once per slice
        }
      },
      [&](caf::error& err) { FAIL(to_string(err)); });
  read_during.receive(
    [&](series_view& v) {
      CHECK(v.found);
      CHECK(v.node == "n1");
      CHECK(v.epoch == 2);
    },
    [&](caf::error& err) { FAIL(to_string(err)); });
  CHECK(counters_a->primary_slices == slices - 1);
  CHECK(counters_b->primary_slices == 1);
  CHECK(counters_a->series == kept_keys.size());
  CHECK(counters_b->series == moved_keys.size());
  CHECK_FALSE(serves(a, moving, 1));
  CHECK(serves(b, moving, 2));

  // After: the source forwards writes at the old epoch, the destination takes the
  // new epoch directly, before any table says so; retries stay duplicates.
  for (int i = 0; i < 2; ++i, ++batches)
    CHECK(write(a, counter_write("p", ++seq, all, 1)).applied == all.size());
  auto retry = write(a, counter_write("p", seq, all, 1));
  CHECK(retry.duplicate_ranges == 2);
  CHECK(retry.applied == 0);
  CHECK(write(b, counter_write("q", 1, moved_keys, 2)).applied == moved_keys.size());
  auto direct_retry = write(b, counter_write("p", seq, moved_keys, 2));
  CHECK(direct_retry.duplicate_ranges == 1);
  // A stale epoch is still refused.
  CHECK(write(a, counter_write("p", ++seq, moved_keys, 0)).code == errc::unavailable);

  for (auto& key : moved_keys) {
    auto v = read(a, key); // forwarded
    CHECK(v.node == "n1");
    CHECK(v.total == static_cast<double>(batches + 1));
  }
  for (auto& key : kept_keys)
    CHECK(read(a, key).total == static_cast<double>(batches));

  // Windows 10 and 11 of the moved keys close on the destination, once each; the
  // sum of the closed increases is the total.
  flush({{a, keys_on(staying, 3)[2], 1}, {b, keys_on(moving, 4)[3], 2}});
  auto counts = log->counts();
  for (auto& key : all) {
    CHECK(counts[{key, 10 * window_ms}] == 1);
    CHECK(counts[{key, 11 * window_ms}] == 1);
  }
  for (auto& [k, n] : counts)
    CHECK(n == 1);
  std::lock_guard<std::mutex> guard{log->mtx};
  std::map<std::string, double> increase;
  for (auto& v : log->views) {
    increase[v.key] += v.window.increase;
    CHECK(v.node == (v.slice == moving ? "n1" : "n0"));
  }
  for (auto& key : moved_keys)
    CHECK(increase[key] == static_cast<double>(batches + 1));
  for (auto& key : kept_keys)
    CHECK(increase[key] == static_cast<double>(batches));
}

TEST_CASE_METHOD(handoff_fixture,
                 "windows due when the export starts close on the source, the others "
                 "on the destination",
                 "[shard][handoff]") {
  constexpr uint32_t moving = 2;
  auto key = keys_on(moving, 1)[0];
  subscribe(a, {key});
  REQUIRE(write(a, counter_write("p", 1, {key}, 1, 10 * window_ms + 1)).applied == 1);
  REQUIRE(write(a, counter_write("p", 2, {key}, 1, 11 * window_ms + 1)).applied == 1);
  // Window 10 is due (11.5 s); no tick or write has closed it yet.
  clock = 11 * window_ms + lateness_ms + 1;
  REQUIRE(export_slice(a, moving, 5, b).value() == 1);
  REQUIRE(log->wait([](auto& vs) { return vs.size() == 1; }));
  {
    std::lock_guard<std::mutex> guard{log->mtx};
    CHECK(log->views[0].node == "n0");
    CHECK(log->views[0].window.start_ms == 10 * window_ms);
  }
  flush({{a, keys_on(moving + 1, 1)[0], 1}, {b, keys_on(moving, 2)[1], 5}});
  auto counts = log->counts();
  CHECK(counts[{key, 10 * window_ms}] == 1);
  CHECK(counts[{key, 11 * window_ms}] == 1);
  std::lock_guard<std::mutex> guard{log->mtx};
  for (auto& v : log->views)
    if (v.key == key && v.window.start_ms == 11 * window_ms)
      CHECK(v.node == "n1");
}

TEST_CASE_METHOD(handoff_fixture,
                 "directory tables older than a move neither drop nor resurrect the "
                 "slice",
                 "[shard][handoff]") {
  constexpr uint32_t moving = 6;
  auto key = keys_on(moving, 1)[0];
  REQUIRE(write(a, counter_write("p", 1, {key}, 1)).applied == 1);
  REQUIRE(export_slice(a, moving, 2, b).value() == 1);
  // A newer table version that still has the slice on n0 at epoch 1 (it was made
  // before the move): the destination keeps it, the source does not recreate it.
  auto stale = table(101, 0, 1);
  self->send(a, update_atom::value, stale);
  self->send(b, update_atom::value, stale);
  CHECK(serves(b, moving, 2));
  CHECK_FALSE(serves(a, moving, 1));
  CHECK(write(a, counter_write("p", 2, {key}, 1)).applied == 1); // forwarded
  CHECK(write(b, counter_write("p", 3, {key}, 2)).applied == 1);
  // The table that records the move changes nothing.
  auto confirmed = table(102, 0, 1);
  confirmed.slices[moving] = slice_assignment{2, 1, {}};
  self->send(a, update_atom::value, confirmed);
  self->send(b, update_atom::value, confirmed);
  CHECK(serves(b, moving, 2));
  CHECK(write(a, counter_write("p", 4, {key}, 1)).applied == 1);
  CHECK(read(b, key).total == 4);
  // A later decision puts the slice back on n0 at epoch 3: the source serves it
  // again (without the moved state, as after any unplanned change) and stops
  // forwarding; the destination drops it.
  auto back = table(103, 0, 1);
  back.slices[moving] = slice_assignment{3, 0, {}};
  self->send(a, update_atom::value, back);
  self->send(b, update_atom::value, back);
  CHECK(serves(a, moving, 3));
  CHECK_FALSE(serves(b, moving, 2));
  CHECK(write(a, counter_write("p", 5, {key}, 1)).code == errc::unavailable);
  CHECK(write(a, counter_write("p", 6, {key}, 3)).applied == 1);
  CHECK(counters_a->primary_slices == slices);
  CHECK(counters_b->primary_slices == 0);
}

TEST_CASE_METHOD(handoff_fixture, "a failed import leaves the source serving",
                 "[shard][handoff]") {
  constexpr uint32_t moving = 4;
  auto key = keys_on(moving, 1)[0];
  subscribe(a, {key});
  REQUIRE(write(a, counter_write("p", 1, {key}, 1)).applied == 1);

  SECTION("the destination is dead") {
    auto dead = sys.spawn([]() -> caf::behavior { return {[](int) {}}; });
    self->monitor(dead);
    caf::anon_send_exit(dead, caf::exit_reason::kill);
    self->receive([](caf::down_msg&) {});
    auto r = export_slice(a, moving, 2, caf::actor_cast<shard_import_actor>(dead));
    CHECK_FALSE(r);
  }
  SECTION("the destination refuses: it serves the slice at a higher epoch") {
    auto newer = table(101, 0, 1);
    newer.slices[moving] = slice_assignment{7, 1, {}};
    self->send(b, update_atom::value, newer);
    REQUIRE(serves(b, moving, 7));
    auto r = export_slice(a, moving, 2, b);
    REQUIRE_FALSE(r);
    CHECK(code_of(r.error()) == errc::unavailable);
    CHECK(message_of(r.error()).find("epoch 7") != std::string::npos);
    CHECK(serves(b, moving, 7));
  }
  SECTION("the destination refuses: a table fenced the slice above the move's epoch") {
    // The handoff was overtaken (abandoned, then an election at a higher epoch):
    // an import that arrives late must not install a copy nobody routes to.
    auto newer = table(101, 0, 1);
    newer.slices[moving] = slice_assignment{3, 0, {}};
    self->send(b, update_atom::value, newer);
    auto r = export_slice(a, moving, 2, b);
    REQUIRE_FALSE(r);
    CHECK(message_of(r.error()).find("fenced at epoch 3") != std::string::npos);
    CHECK(counters_b->primary_slices == 0);
  }
  CHECK(serves(a, moving, 1));
  CHECK(counters_a->primary_slices == slices);
  REQUIRE(write(a, counter_write("p", 2, {key}, 1)).applied == 1);
  CHECK(write(a, counter_write("p", 2, {key}, 1)).duplicate_ranges == 1);
  CHECK(read(a, key).total == 2);
  CHECK(read(a, key).node == "n0");
  // The window is scheduled again: it closes on the source, once.
  flush({{a, keys_on(moving, 2)[1], 1}});
  auto counts = log->counts();
  CHECK(counts[{key, 10 * window_ms}] == 1);
}

TEST_CASE_METHOD(handoff_fixture,
                 "an import that arrives after the export timed out is withdrawn",
                 "[shard][handoff]") {
  constexpr uint32_t moving = 1;
  auto key = keys_on(moving, 1)[0];
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  a = spawn("n0", counters_a, 100); // 100 ms request timeout
  REQUIRE(write(a, counter_write("p", 1, {key}, 1)).applied == 1);
  auto held = std::make_shared<std::promise<void>>();
  auto gate = sys.spawn(relay, caf::actor_cast<caf::actor>(b), held, false);
  auto exported = self->request(a, 10s, series::export_atom::value, moving, uint64_t{2},
                                caf::actor_cast<shard_import_actor>(gate));
  auto during = self->request(a, 10s, write_atom::value,
                              counter_write("p", 2, {key}, 1));
  bool failed = false;
  exported.receive([](uint64_t) {},
                   [&](caf::error& err) { failed = err == caf::sec::request_timeout; });
  CHECK(failed);
  during.receive([](series::shard_write_result& r) { CHECK(r.applied == 1); },
                 [&](caf::error& err) { FAIL(to_string(err)); });
  CHECK(read(a, key).total == 2);
  // The held import, then the abort, reach the destination in that order: it ends
  // up without the slice. The read goes through the relay, after both.
  caf::anon_send(gate, release_atom::value);
  auto v = read(caf::actor_cast<shard_import_actor>(gate), key);
  CHECK_FALSE(v.found);
  CHECK(v.node.find("not served") != std::string::npos);
  CHECK(counters_b->primary_slices == 0);
  CHECK(serves(a, moving, 1));
}

TEST_CASE_METHOD(handoff_fixture,
                 "the target of a handoff logs the slices it imported, and the imports "
                 "withdrawn because their answer was lost",
                 "[shard][handoff]") {
  auto kinds = [&](const std::string& kind) {
    std::vector<std::string> out;
    for (auto& e : events_b->since(0))
      if (e.kind == kind)
        out.push_back(e.text);
    return out;
  };
  auto b_import = caf::actor_cast<shard_import_actor>(b);
  REQUIRE(write(a, counter_write("p", 1, keys_on(3, 1), 1)).code == errc::none);
  REQUIRE(export_slice(a, 3, 2, b_import));
  REQUIRE(export_slice(a, 5, 2, b_import));
  self->send(b, series::tick_atom::value);
  slices_of(b); // the tick was handled
  auto imports = kinds("import");
  REQUIRE(imports.size() == 1);
  CHECK(imports[0].find("2 slices (3, 5)") != std::string::npos);
  CHECK(kinds("withdraw").empty());
  // The source of slice 5 did not get the answer: it withdraws the import.
  self->send(b, series::abort_atom::value, uint32_t{5}, uint64_t{2});
  self->send(b, series::tick_atom::value);
  slices_of(b);
  auto withdrawn = kinds("withdraw");
  REQUIRE(withdrawn.size() == 1);
  CHECK(withdrawn[0].find("1 slice (5)") != std::string::npos);
}
