// A seeded simulation of one replicated slice on the real shards of three nodes: the
// test plays the directory (moves, elections as the controller runs them, tables),
// the supervisor (kills and restarts) and a client (writes, retried while refused;
// sometimes several in flight when the primary is killed), and after every election
// checks that the elected replica holds every acknowledged write and counts none
// twice. One replica fails at a time, and not before a restarted one was brought
// level (RF 3 survives one lost replica, not a second before the first is replaced);
// lagging followers do not hold a failure back. In one section the shards reach each
// other through relays that delay each message by up to 10 ms, in order per
// receiver, so what one shard sends to two others arrives in either order, as between
// nodes. TETHER_SIM_SEEDS=N runs N seeds per section; TETHER_SIM_TRACE=1 prints what
// each seed did.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <catch2/catch.hpp>

#include "shard/replication_fixture.hpp"
#include "shard/shard_test_support.hpp"

using namespace std::chrono_literals;
using namespace tether;
using namespace tether::series::testing;

namespace {

constexpr uint32_t slice = 3;

struct slice_sim : replication_fixture {
  std::mt19937 rng;
  std::string key = keys_on(slice, 1)[0];
  std::vector<bool> alive = {true, true, true};
  std::vector<bool> fresh = {false, false, false}; ///< restarted, not level since
  uint64_t seq = 0;
  double acked = 0;   ///< increments acknowledged
  double sent = 0;    ///< increments sent (an upper bound of the total)
  int32_t old_primary = -1; ///< the source of the last move, which forwards
  std::ostringstream trail;  ///< what happened, for a failure's message

  int max_delay_ms = 0; ///< > 0: the shards reach each other through delay relays

  slice_sim(uint32_t seed, int delay_ms) : rng(seed), max_delay_ms(delay_ms) {
    if (max_delay_ms > 0) {
      for (size_t i = 0; i < shards.size(); ++i)
        front(i);
      announce();
    }
  }

  /// Puts a delay relay in front of shard i (when the simulation delays).
  void front(size_t i) {
    if (max_delay_ms <= 0)
      return;
    fronts.resize(shards.size());
    fronts[i] = sys.spawn(delay_relay, caf::actor_cast<caf::actor>(shards[i]),
                          static_cast<uint32_t>(rng()), max_delay_ms);
  }

  /// What other shards send to shard i through.
  caf::actor reach(size_t i) {
    return i < fronts.size() && fronts[i] ? fronts[i] : caf::actor_cast<caf::actor>(shards[i]);
  }

  size_t pick(size_t n) {
    return std::uniform_int_distribution<size_t>{0, n - 1}(rng);
  }

  slice_assignment& here() {
    return current.slices[slice];
  }

  std::vector<size_t> living() const {
    std::vector<size_t> out;
    for (size_t i = 0; i < alive.size(); ++i)
      if (alive[i])
        out.push_back(i);
    return out;
  }

  void publish_living() {
    ++current.version;
    publish(current, living());
  }

  /// A write of 1 to the primary at the table's epoch, or to the last move's
  /// source at the epoch before (a router with the older table).
  void write_once() {
    auto to = static_cast<size_t>(here().primary);
    auto epoch = here().epoch;
    if (old_primary >= 0 && alive[static_cast<size_t>(old_primary)] && pick(4) == 0) {
      to = static_cast<size_t>(old_primary);
      epoch -= 1;
    }
    if (!alive[to])
      return;
    sent += 1;
    ++seq;
    // As a client: a write refused while the primary brings its followers level is
    // sent again, with the same sequence, for a while.
    series::shard_write_result r;
    for (int attempt = 0; attempt < 50; ++attempt) {
      r = write(to, counter_write("p", seq, {key}, epoch));
      if (r.code == errc::none || max_delay_ms == 0)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(max_delay_ms));
    }
    if (r.code == errc::none) // applied now, or by an attempt before: durable
      acked += static_cast<double>(r.applied + r.duplicate_ranges);
    trail << " w" << to << (r.code == errc::none ? "+" : "-");
  }

  /// Hands the slice to another living node at epoch + 1; `lose_answer`: the
  /// import's answer is lost (the import still arrives), so the directory elects.
  void move(bool lose_answer) {
    if (living().size() < 3)
      return;
    auto from = static_cast<size_t>(here().primary);
    auto to = (from + 1 + pick(2)) % 3;
    auto next = here().epoch + 1;
    trail << " move" << from << ">" << to << (lose_answer ? "?" : "");
    auto held = std::make_shared<std::promise<void>>();
    caf::actor dest = reach(to);
    if (lose_answer)
      dest = sys.spawn(relay, dest, held, true);
    bool ok = false;
    self
      ->request(shards[from], 10s, series::export_atom::value, slice, next,
                caf::actor_cast<series::shard_import_actor>(dest))
      .receive([&](uint64_t) { ok = true; }, [](caf::error&) {});
    if (lose_answer) {
      caf::anon_send(dest, release_atom::value);
      elect();
      return;
    }
    if (!ok)
      return;
    here() = slice_assignment{next, static_cast<int32_t>(to), {}};
    for (int32_t m = 0; m < 3; ++m)
      if (m != static_cast<int32_t>(to))
        here().followers.push_back(m);
    old_primary = static_cast<int32_t>(from);
    publish_living();
  }

  /// As the directory elects: fences the living replicas at epoch + 2, takes the
  /// furthest, and checks it holds every acknowledged write.
  void elect() {
    auto xs = living();
    if (xs.size() < 2)
      return;
    auto fence = here().epoch + 2;
    auto version = current.version + 1;
    size_t best = xs[0];
    series::replica_position top;
    bool any = false;
    for (auto i : xs) {
      std::vector<series::replica_position> ps;
      self
        ->request(shards[i], 5s, series::position_atom::value,
                  std::vector<uint32_t>{slice}, std::vector<uint64_t>{fence}, version)
        .receive([&](std::vector<series::replica_position>& x) { ps = x; },
                 [&](caf::error& err) { FAIL(to_string(err)); });
      REQUIRE(ps.size() == 1);
      auto& p = ps[0];
      if (p.seeded && (!any || std::tie(p.epoch, p.seq) > std::tie(top.epoch, top.seq))) {
        best = i;
        top = p;
        any = true;
      }
    }
    REQUIRE(any);
    trail << " elect" << best << "@" << top.epoch << "/" << top.seq;
    auto total = local(best, key).first.total;
    INFO("steps:" << trail.str());
    REQUIRE(total >= acked); // every acknowledged increment
    REQUIRE(total <= sent);  // none counted twice
    here() = slice_assignment{fence, static_cast<int32_t>(best), {}};
    for (int32_t m = 0; m < 3; ++m)
      if (m != static_cast<int32_t>(best))
        here().followers.push_back(m);
    old_primary = -1;
    current.version = version - 1;
    publish_living();
  }

  /// Whether every restarted replica has been brought level once since: only then
  /// may another fail (RF 3 survives one lost replica, not a second one before the
  /// first is replaced). Followers that merely lag behind do not count.
  bool replaced() {
    if (living().size() < 3)
      return false;
    for (int attempt = 0; attempt < 40; ++attempt) {
      auto p = positions(static_cast<size_t>(here().primary), {slice}).at(0);
      bool all = true;
      for (size_t i = 0; i < 3; ++i) {
        if (!fresh[i])
          continue;
        auto q = positions(i, {slice}).at(0);
        fresh[i] = !(q.seeded && q.epoch == p.epoch && q.seq == p.seq);
        all = all && !fresh[i];
      }
      if (all)
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  void kill_one() {
    if (!replaced())
      return;
    auto i = pick(3);
    trail << " kill" << i;
    kill(i);
    alive[i] = false;
    if (static_cast<int32_t>(i) == here().primary)
      elect();
  }

  /// Several writes in flight to the primary when it dies, after a random pause of
  /// up to the relays' delay: the ones answered before count as acknowledged, the
  /// others may or may not have reached a follower.
  void burst_and_kill() {
    if (!replaced())
      return;
    auto to = static_cast<size_t>(here().primary);
    auto epoch = here().epoch;
    auto n = 1 + pick(4);
    using handle = decltype(self->request(shards[0], 1s, write_atom::value,
                                          series::shard_write{}));
    std::vector<handle> pending;
    for (size_t k = 0; k < n; ++k) {
      sent += 1;
      pending.push_back(self->request(shards[to], 1s, write_atom::value,
                                      counter_write("p", ++seq, {key}, epoch)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(pick(max_delay_ms + 2)));
    trail << " burst" << n << "-kill" << to;
    kill(to);
    alive[to] = false;
    for (auto& h : pending)
      h.receive(
        [&](series::shard_write_result& r) {
          if (r.code == errc::none)
            acked += static_cast<double>(r.applied + r.duplicate_ranges);
        },
        [](caf::error&) {});
    elect();
  }

  void restart() {
    for (size_t i = 0; i < 3; ++i)
      if (!alive[i]) {
        trail << " restart" << i;
        shards[i] = spawn(names[i]);
        front(i);
        alive[i] = true;
        fresh[i] = true;
        announce();
        publish_living();
      }
  }

  void step() {
    auto r = pick(100);
    if (r < 55)
      write_once();
    else if (r < 67)
      move(false);
    else if (r < 72)
      move(true);
    else if (r < 77)
      kill_one();
    else if (r < 80)
      burst_and_kill();
    else if (r < 92)
      restart();
    else
      elect();
  }
};

} // namespace

TEST_CASE("a replicated slice keeps every acknowledged write through moves, lost "
          "answers, kills and elections",
          "[shard][replication][sim]") {
  int delay_ms = 0;
  uint32_t seeds = 40;
  SECTION("messages between shards arrive at once") {
  }
  SECTION("messages between shards take up to 10 ms, each pair in order") {
    delay_ms = 10;
    seeds = 6;
  }
  // TETHER_SIM_SEEDS=N runs N seeds in each section (a longer soak).
  if (auto* n = std::getenv("TETHER_SIM_SEEDS"))
    seeds = static_cast<uint32_t>(std::strtoul(n, nullptr, 10));
  for (uint32_t seed = 1; seed <= seeds; ++seed) {
    slice_sim sim{seed, delay_ms};
    INFO("seed " << seed);
    for (int i = 0; i < 60; ++i)
      sim.step();
    sim.restart();
    sim.elect();
    if (std::getenv("TETHER_SIM_TRACE") != nullptr) // what each seed did
      std::fprintf(stderr, "seed %u:%s\n", seed, sim.trail.str().c_str());
    CHECK(sim.acked > 0);
  }
}
