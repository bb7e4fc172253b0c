#include "tether/node.hpp"

#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include <catch2/catch.hpp>

#include "tether/tether.hpp"

using namespace std::chrono_literals;

namespace {

struct fixture {
  fixture() : sys(init(cfg)) {
    tether::node_options opts;
    opts.shards = 2;
    opts.window_ms = 100;
    opts.lateness_ms = 0;
    n = std::make_unique<tether::node>(tether::spawn_node(sys, opts));
  }

  ~fixture() {
    n->shutdown();
  }

  static caf::actor_system_config& init(caf::actor_system_config& c) {
    tether::configure(c);
    return c;
  }

  /// Writes and returns the ack, or the error's code.
  std::pair<tether::write_ack, tether::errc>
  write(const tether::ingest_actor& p, uint64_t seq,
        std::vector<tether::sample> xs) {
    std::pair<tether::write_ack, tether::errc> out{{}, tether::errc::none};
    caf::scoped_actor self{sys};
    self->request(p, 5s, tether::write_atom::value, seq, std::move(xs))
      .receive([&](tether::write_ack& ack) { out.first = ack; },
               [&](caf::error& err) { out.second = tether::code_of(err); });
    return out;
  }

  tether::series_view read(const tether::ingest_actor& p, std::string key) {
    tether::series_view out;
    caf::scoped_actor self{sys};
    self->request(p, 5s, tether::read_atom::value, std::move(key))
      .receive([&](tether::series_view& v) { out = std::move(v); },
               [&](caf::error& err) { FAIL(to_string(err)); });
    return out;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  std::unique_ptr<tether::node> n;
};

tether::sample counter(std::string name, double v,
                       std::vector<std::pair<std::string, std::string>> labels = {}) {
  tether::sample s;
  s.name = std::move(name);
  s.labels = std::move(labels);
  s.kind = tether::kind::counter;
  s.value = v;
  return s;
}

/// `s` stamped 10 ms into the next 100 ms window: with no lateness a sample stamped
/// with its receive time is late whenever the node applies it after its window's end,
/// which a receipt a few milliseconds before that end makes likely on a busy machine.
tether::sample in_next_window(tether::sample s) {
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
  s.timestamp_ms = (now / 100 + 1) * 100 + 10;
  return s;
}

} // namespace

TEST_CASE_METHOD(fixture, "a node acknowledges a write once and dedups its retry") {
  auto p = n->open_producer("producer-a");
  // 30 s ahead: the 100 ms window stays open however slowly a loaded machine runs
  // this test (with the receive time, a late apply would count the samples as late).
  auto ahead = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count()
               + 30000;
  std::vector<tether::sample> batch;
  for (int i = 0; i < 50; ++i) {
    batch.push_back(counter("requests_total", 2, {{"pod", std::to_string(i % 5)}}));
    batch.back().timestamp_ms = ahead;
  }
  auto [ack, code] = write(p, 1, batch);
  REQUIRE(code == tether::errc::none);
  CHECK(ack.sequence == 1);
  CHECK(ack.accepted == 50);
  CHECK_FALSE(ack.duplicate);
  auto [again, code2] = write(p, 1, batch);
  REQUIRE(code2 == tether::errc::none);
  CHECK(again.accepted == 0);
  CHECK(again.duplicate);
  auto v = read(p, "requests_total{pod=\"3\"}");
  CHECK(v.found);
  CHECK(v.total == 20);
  CHECK(v.count == 10);
  CHECK(v.node == "tether-0");
  CHECK(v.epoch == 1);
  CHECK(n->stats().series == 5);
  CHECK(n->stats().samples_applied == 50);
}

TEST_CASE_METHOD(fixture, "the same sequence from another producer is applied") {
  auto a = n->open_producer("a");
  auto b = n->open_producer("b");
  REQUIRE(write(a, 7, {in_next_window(counter("x_total", 1))}).first.accepted == 1);
  REQUIRE(write(b, 7, {in_next_window(counter("x_total", 1))}).first.accepted == 1);
  // A second handle for producer "a" (a reconnect) is still deduplicated.
  auto a2 = n->open_producer("a");
  CHECK(write(a2, 7, {in_next_window(counter("x_total", 1))}).first.duplicate);
  CHECK(read(a, "x_total").total == 2);
}

TEST_CASE_METHOD(fixture, "invalid batches are refused and change nothing") {
  auto p = n->open_producer("p");
  REQUIRE(write(p, 1, {counter("ok_total", 1)}).second == tether::errc::none);
  auto bad = counter("ok_total", 1);
  bad.value = -1;
  CHECK(write(p, 2, {counter("ok_total", 5), bad}).second
        == tether::errc::negative_counter);
  CHECK(write(p, 3, {counter("bad name", 1)}).second
        == tether::errc::invalid_metric_name);
  CHECK(write(p, 0, {counter("ok_total", 1)}).second
        == tether::errc::invalid_sequence);
  auto v = read(p, "ok_total");
  CHECK(v.total == 1);
  CHECK(v.count == 1);
}

TEST_CASE_METHOD(fixture, "a kind conflict is refused and leaves the series as it was") {
  auto p = n->open_producer("p");
  REQUIRE(write(p, 1, {in_next_window(counter("m", 4))}).second == tether::errc::none);
  tether::sample g;
  g.name = "m";
  g.kind = tether::kind::gauge;
  g.value = 9;
  CHECK(write(p, 2, {g}).second == tether::errc::kind_conflict);
  auto v = read(p, "m");
  CHECK(v.kind == tether::kind::counter);
  CHECK(v.total == 4);
}

TEST_CASE_METHOD(fixture, "reads of absent or invalid keys") {
  auto p = n->open_producer("p");
  auto v = read(p, "nothing_here{a=\"b\"}");
  CHECK_FALSE(v.found);
  CHECK(v.key == "nothing_here{a=\"b\"}");
  CHECK(v.node == "tether-0");
  caf::scoped_actor self{sys};
  auto code = tether::errc::none;
  self->request(p, 5s, tether::read_atom::value, std::string{"1bad{"})
    .receive([](tether::series_view&) {},
             [&](caf::error& err) { code = tether::code_of(err); });
  CHECK(code == tether::errc::invalid_key);
}

TEST_CASE_METHOD(fixture, "subscribers get the current state, then window updates") {
  auto p = n->open_producer("p");
  REQUIRE(write(p, 1, {in_next_window(counter("sub_total", 1))}).second
          == tether::errc::none);
  caf::scoped_actor self{sys};
  std::vector<tether::series_view> initial;
  self->request(p, 5s, tether::subscribe_atom::value,
                std::vector<std::string>{"sub_total", "later_total"},
                caf::actor{self})
    .receive([&](std::vector<tether::series_view>& vs) { initial = vs; },
             [&](caf::error& err) { FAIL(to_string(err)); });
  REQUIRE(initial.size() == 1);
  CHECK(initial[0].total == 1);
  REQUIRE(write(p, 2, {in_next_window(counter("sub_total", 2)),
                       in_next_window(counter("later_total", 5))})
            .second
          == tether::errc::none);
  // Windows are 100 ms without lateness: the update arrives at the next close.
  std::map<std::string, tether::series_view> seen;
  // The first write's window may close on its own first; wait for the second's.
  while (seen["sub_total"].total != 3 || seen.count("later_total") == 0) {
    self->receive(
      [&](tether::window_atom, std::vector<tether::series_view>& vs) {
        for (auto& v : vs) {
          CHECK(v.window.end_ms - v.window.start_ms == 100);
          seen[v.key] = v;
        }
      },
      caf::after(5s) >> [&] { FAIL("no window update within 5 s"); });
  }
  CHECK(seen["sub_total"].total == 3);
  CHECK(seen["sub_total"].window.total == 3);
  CHECK(seen["later_total"].window.increase == 5);
}
