#pragma once

// The fixture of the shard's replication component tests: three shards in one actor
// system stand for the shards of three nodes ("n0", "n1", "n2"); the tests play the
// directory (tables) and the supervisor (the shards of every node).

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <catch2/catch.hpp>

#include "directory/directory.hpp"
#include "keys/slicing.hpp"
#include "shard/message_types.hpp"
#include "shard/shard.hpp"
#include "shard/shard_test_support.hpp"
#include "tether/tether.hpp"

namespace tether::series::testing {

using namespace std::chrono_literals;
using tether::series::shard_handoff_actor;

inline const std::vector<std::string> names = {"n0", "n1", "n2"};

struct replication_fixture {
  replication_fixture() : sys(init(cfg)) {
    directory::directory_config dc;
    for (auto& n : names)
      dc.members.push_back(member{n, "127.0.0.1:1", true});
    dc.slice_count = slices;
    dir = directory::spawn_directory(sys, dc);
    exporter = sys.spawn(collector, log);
    current = table(100, 0, {1, 2}, 1);
    for (size_t i = 0; i < names.size(); ++i)
      shards.push_back(spawn(names[i]));
    announce();
  }

  ~replication_fixture() {
    for (auto& s : shards)
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(dir, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(exporter, caf::exit_reason::user_shutdown);
  }

  static caf::actor_system_config& init(caf::actor_system_config& c) {
    configure(c);
    series::add_message_types(c);
    return c;
  }

  /// Every slice led by `primary` with `followers` at `epoch`, RF `rf` (default:
  /// the size of the replica set).
  static assignment_table table(uint64_t version, int32_t primary,
                                std::vector<int32_t> followers, uint64_t epoch,
                                uint32_t rf = 0) {
    assignment_table t;
    t.version = version;
    t.replication_factor = rf > 0 ? rf : static_cast<uint32_t>(1 + followers.size());
    for (auto& n : names)
      t.members.push_back(member{n, "127.0.0.1:1", true});
    t.slices.resize(slices);
    for (auto& s : t.slices) {
      s.primary = primary;
      s.followers = followers;
      s.epoch = epoch;
    }
    return t;
  }

  shard_handoff_actor spawn(const std::string& name) {
    auto sc = series::testing::fixture_config(name, dir,
                                              std::make_shared<series::node_counters>(),
                                              [this] { return clock.load(); });
    sc.counters->size_slices(slices);
    counters.push_back(sc.counters);
    sc.initial = current;
    sc.exporter = exporter;
    return series::spawn_shard(sys, sc);
  }

  /// Tells every shard where the shards of every node are (as the supervisor does).
  /// Announces `fronts[i]` for shard i where set (an actor in front of it).
  void announce() {
    std::vector<series::node_shards> nodes;
    for (size_t i = 0; i < names.size(); ++i) {
      auto h = i < fronts.size() && fronts[i] ? fronts[i]
                                              : caf::actor_cast<caf::actor>(shards[i]);
      nodes.push_back({names[i], {caf::actor_cast<series::shard_actor>(h)}});
    }
    for (auto& s : shards)
      self->send(s, series::node_shards_atom::value, nodes);
  }

  /// Sends table `t` to the shards at `to` (all by default).
  void publish(const assignment_table& t, std::vector<size_t> to = {0, 1, 2}) {
    for (auto i : to)
      self->send(shards[i], update_atom::value, t);
  }

  void kill(size_t i) {
    self->monitor(shards[i]);
    caf::anon_send_exit(shards[i], caf::exit_reason::kill);
    self->receive([](caf::down_msg&) {});
  }

  /// A write of counter deltas `value` at the clock, one range per slice.
  series::shard_write counter_write(const std::string& producer, uint64_t seq,
                                    std::vector<std::string> keys, uint64_t epoch,
                                    double value = 1, int64_t ts = -1) {
    return counter_write_at(producer, seq, std::move(keys), epoch, value,
                            ts >= 0 ? ts : clock.load());
  }

  /// The same with gauge samples of `value` (a gauge's state shows every field).
  series::shard_write gauge_write(const std::string& producer, uint64_t seq,
                                  std::vector<std::string> keys, uint64_t epoch,
                                  double value) {
    auto w = counter_write(producer, seq, std::move(keys), epoch, value);
    for (auto& s : w.samples)
      s.kind = kind::gauge;
    return w;
  }

  series::shard_write_result write(size_t i, series::shard_write w) {
    series::shard_write_result out;
    self->request(shards[i], 5s, write_atom::value, std::move(w))
      .receive([&](series::shard_write_result& r) { out = r; },
               [&](caf::error& err) { FAIL(to_string(err)); });
    return out;
  }

  /// A routed read; `found == false` with the error as `node` on failure.
  series_view read(size_t i, const std::string& key) {
    series_view out;
    series::key_route k{key, keys::slice_of(keys::key_hash(key), slices)};
    self->request(shards[i], 5s, read_atom::value, k)
      .receive([&](series_view& v) { out = v; },
               [&](caf::error& err) { out.node = to_string(err); });
    return out;
  }

  /// Shard i's own replica of `key`'s slice: its view of the key and its position.
  std::pair<series_view, series::replica_position> local(size_t i,
                                                         const std::string& key) {
    std::pair<series_view, series::replica_position> out;
    series::key_route k{key, keys::slice_of(keys::key_hash(key), slices)};
    self->request(shards[i], 5s, read_atom::value, series::local_atom::value, k)
      .receive(
        [&](series_view& v, series::replica_position& p) {
          out = {v, p};
        },
        [&](caf::error& err) { FAIL(to_string(err)); });
    return out;
  }

  std::vector<series::replica_position> positions(size_t i,
                                                  std::vector<uint32_t> xs) {
    std::vector<series::replica_position> out;
    self->request(shards[i], 5s, series::position_atom::value, xs)
      .receive([&](std::vector<series::replica_position>& ps) { out = ps; },
               [&](caf::error& err) { FAIL(to_string(err)); });
    return out;
  }

  /// Of shards `among`, the one whose replica of slice `s` is furthest (highest
  /// epoch, then sequence): the one an election takes.
  size_t furthest(uint32_t s, const std::vector<size_t>& among) {
    size_t best = among.at(0);
    auto top = positions(best, {s}).at(0);
    for (auto i : among) {
      auto p = positions(i, {s}).at(0);
      if (std::tie(p.epoch, p.seq) > std::tie(top.epoch, top.seq)) {
        best = i;
        top = p;
      }
    }
    return best;
  }

  /// Returns once the exporter has handled every window sent to it before.
  void sync_exporter() {
    self->request(exporter, 5s, 1).receive([](int) {},
                                           [&](caf::error& err) { FAIL(to_string(err)); });
  }

  /// Checks that shards `a` and `b` hold equal replicas of `key`'s slice.
  void same_state(size_t a, size_t b, const std::string& key) {
    auto [va, pa] = local(a, key);
    auto [vb, pb] = local(b, key);
    INFO(key << " on " << names[a] << " and " << names[b]);
    CHECK(va.found == vb.found);
    CHECK(va.kind == vb.kind);
    CHECK(va.total == vb.total);
    CHECK(va.count == vb.count);
    CHECK(va.sum == vb.sum);
    CHECK(va.min == vb.min);
    CHECK(va.max == vb.max);
    CHECK(va.last == vb.last);
    CHECK(va.updated_ms == vb.updated_ms);
    CHECK(va.window.start_ms == vb.window.start_ms);
    CHECK(va.window.count == vb.window.count);
    CHECK(va.window.total == vb.window.total);
    CHECK(pa.seeded);
    CHECK(pb.seeded);
    CHECK(pa.epoch == pb.epoch);
    CHECK(pa.seq == pb.seq);
  }

  std::atomic<int64_t> clock{10 * window_ms + 5};
  std::shared_ptr<window_log> log = std::make_shared<window_log>();
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self{sys}; ///< sends every request of the tests, in order
  directory_actor dir;
  caf::actor exporter;
  assignment_table current;
  std::vector<shard_handoff_actor> shards;
  /// What the other shards see of each shard (`announce`); none: the shard itself.
  std::vector<caf::actor> fronts;
  std::vector<std::shared_ptr<series::node_counters>> counters; ///< by shard
};


} // namespace tether::series::testing
