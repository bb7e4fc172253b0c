#include "shard/shard.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <catch2/catch.hpp>

#include "directory/directory.hpp"
#include "keys/slicing.hpp"
#include "shard/message_types.hpp"
#include "shard/replication_fixture.hpp"
#include "shard/shard_state.hpp"
#include "shard/shard_test_support.hpp"
#include "tether/tether.hpp"

// Component tests of slice replication (the fixture: shard/replication_fixture.hpp).

using namespace std::chrono_literals;
using namespace tether;
using namespace tether::series::testing;
using tether::series::shard_handoff_actor;

TEST_CASE_METHOD(replication_fixture,
                 "followers apply the primary's writes and window closes: every "
                 "replica holds the same state",
                 "[shard][replication]") {
  auto a = keys_on(1, 3);
  auto b = keys_on(4, 2);
  auto all = a;
  all.insert(all.end(), b.begin(), b.end());
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    auto r = write(0, gauge_write("p", seq, all, 1, static_cast<double>(seq)));
    REQUIRE(r.code == errc::none);
    CHECK(r.applied == all.size());
  }
  // A retry is a duplicate, and a window closes on every replica.
  CHECK(write(0, gauge_write("p", 5, all, 1, 5)).duplicate_ranges == 2);
  clock = 11 * window_ms + lateness_ms + 1;
  REQUIRE(write(0, gauge_write("q", 1, a, 1, 3)).code == errc::none);
  for (auto& key : all) {
    CHECK(read(0, key).count == (key == a[0] || key == a[1] || key == a[2] ? 6u : 5u));
    same_state(0, 1, key);
    same_state(0, 2, key);
  }
  auto [v, p] = local(1, a[0]);
  CHECK(v.window.start_ms == 10 * window_ms); // closed on the follower too
  CHECK_FALSE(p.primary);
  auto ps = positions(0, {1, 4});
  REQUIRE(ps.size() == 2);
  CHECK(ps[0].primary);
  CHECK(ps[0].seeded);
  CHECK(ps[0].seq > 0);
  // Only the primary emitted the window.
  REQUIRE(log->wait([&](auto& vs) { return vs.size() >= all.size(); }));
  sync_exporter();
  for (auto& [k, n] : log->counts())
    CHECK(n == 1);
  std::lock_guard<std::mutex> guard{log->mtx};
  for (auto& view : log->views)
    CHECK(view.node == "n0");
}

TEST_CASE_METHOD(replication_fixture,
                 "writes that queue up together reach each follower whole or in part",
                 "[shard][replication]") {
  // Slice 3 is followed by n1 only, slice 5 by n2 only: a write with one sample on
  // slice 3 and three on slice 5 goes to n1 in part and to n2 whole.
  current = table(101, 0, {1, 2}, 1, 2);
  current.slices[3].followers = {1};
  current.slices[5].followers = {2};
  publish(current);
  auto a = keys_on(3, 1);
  auto b = keys_on(5, 3);
  auto all = a;
  all.insert(all.end(), b.begin(), b.end());
  // Five producers' writes sent at once: they queue up in the primary's mailbox
  // and leave for the followers together.
  constexpr int writes = 5;
  std::vector<series::shard_write_result> results;
  std::vector<decltype(self->request(shards[0], 5s, write_atom::value,
                                     series::shard_write{}))>
    pending;
  for (int i = 0; i < writes; ++i)
    pending.push_back(self->request(shards[0], 5s, write_atom::value,
                                    counter_write("p" + std::to_string(i), 1, all, 1,
                                                  static_cast<double>(i + 1))));
  for (auto& h : pending)
    h.receive([&](series::shard_write_result& r) { results.push_back(r); },
              [&](caf::error& err) { FAIL(to_string(err)); });
  REQUIRE(results.size() == static_cast<size_t>(writes));
  for (auto& r : results) {
    CHECK(r.code == errc::none);
    CHECK(r.applied == all.size());
  }
  // 1 + 2 + 3 + 4 + 5 on every key, on the primary and on each key's follower.
  for (auto& key : all)
    CHECK(read(0, key).total == 15);
  CHECK(local(1, a[0]).first.total == 15);
  for (auto& key : b)
    CHECK(local(2, key).first.total == 15);
  same_state(0, 1, a[0]);
  for (auto& key : b)
    same_state(0, 2, key);
}

TEST_CASE_METHOD(replication_fixture,
                 "without a write quorum the primary acknowledges nothing",
                 "[shard][replication]") {
  auto keys = keys_on(2, 2);
  SECTION("RF 2, its follower dead") {
    current = table(101, 0, {1}, 1, 2);
  }
  SECTION("RF 3 with one follower placed, that follower dead") {
    current = table(101, 0, {1}, 1, 3);
  }
  publish(current);
  REQUIRE(write(0, counter_write("p", 1, keys, 1)).applied == keys.size());
  kill(1);
  auto r = write(0, counter_write("p", 2, keys, 1));
  CHECK(r.code == errc::unavailable);
  CHECK(r.applied == 0);
  // Reads of what a quorum may not hold are refused as well.
  auto v = read(0, keys[0]);
  CHECK_FALSE(v.found);
  INFO(v.node);
  CHECK(v.node.find("quorum") != std::string::npos);
  // The follower's node comes back empty: the primary seeds it, then the retry
  // is acknowledged and counted once.
  shards[1] = spawn("n1");
  announce();
  auto retry = write(0, counter_write("p", 2, keys, 1));
  REQUIRE(retry.code == errc::none);
  CHECK(retry.applied + retry.duplicate_ranges * keys.size() >= keys.size());
  for (auto& key : keys) {
    CHECK(read(0, key).total == 2);
    same_state(0, 1, key);
  }
}

TEST_CASE_METHOD(replication_fixture,
                 "replicas refuse a stale epoch; a fenced primary acknowledges nothing",
                 "[shard][replication]") {
  auto keys = keys_on(3, 2);
  current = table(101, 0, {1}, 1, 2);
  publish(current);
  REQUIRE(write(0, counter_write("p", 1, keys, 1)).applied == keys.size());
  auto [v1, p1] = local(1, keys[0]);
  REQUIRE(p1.seeded);

  SECTION("an item or a seed below the replica's epoch") {
    publish(table(102, 0, {1}, 5, 2), {1});
    replication::replica_batch b;
    replication::replica_item it;
    it.slice = 3;
    it.epoch = 4;
    it.seq = p1.seq + 1;
    it.prev_epoch = p1.epoch;
    b.items.push_back(it);
    self->request(shards[1], 5s, series::replicate_atom::value, b)
      .receive(
        [&](replication::replica_acks& reply) {
          auto& acks = reply.xs;
          REQUIRE(acks.size() == 1);
          CHECK(acks[0].code == replication::ack_code::stale);
          CHECK(acks[0].epoch == 5);
        },
        [&](caf::error& err) { FAIL(to_string(err)); });
    series::slice_snapshot snap;
    snap.slice = 3;
    snap.epoch = 4;
    snap.position = {4, p1.seq + 10};
    self->request(shards[1], 5s, series::seed_atom::value, snap)
      .receive([&](replication::replica_ack& a) { CHECK(a.code == replication::ack_code::stale); },
               [&](caf::error& err) { FAIL(to_string(err)); });
    CHECK(local(1, keys[0]).second.seq == p1.seq); // nothing applied
  }

  SECTION("one answer per slice, in the order of first items, batch after batch") {
    auto at = p1; // a lambda may not capture a structured binding (C++17)
    auto item = [at](uint32_t slice, uint64_t seq) {
      replication::replica_item it;
      it.slice = slice;
      it.epoch = at.epoch;
      it.seq = seq;
      it.prev_epoch = at.epoch;
      it.kind = replication::item_kind::barrier;
      return it;
    };
    auto send = [&](const replication::replica_batch& b) {
      std::vector<replication::replica_ack> acks;
      self->request(shards[1], 5s, series::replicate_atom::value, b)
        .receive([&](replication::replica_acks& reply) { acks = reply.xs; },
                 [&](caf::error& err) { FAIL(to_string(err)); });
      return acks;
    };
    // Slice 3 out of order (a gap), then its next item; a slice id no shard has,
    // far beyond any table, twice.
    replication::replica_batch b;
    b.items = {item(3, p1.seq + 5), item(2000000, 1), item(3, p1.seq + 6),
               item(2000000, 2)};
    auto acks = send(b);
    REQUIRE(acks.size() == 2);
    CHECK(acks[0].slice == 3);
    CHECK(acks[0].code == replication::ack_code::gap);
    CHECK(acks[0].item == p1.seq + 5); // the first refused item
    CHECK(acks[1].slice == 2000000);
    CHECK(acks[1].code != replication::ack_code::ok);
    // The next batch starts afresh: slice 3 continues its position now.
    replication::replica_batch next;
    next.items = {item(3, p1.seq + 1)};
    acks = send(next);
    REQUIRE(acks.size() == 1);
    CHECK(acks[0].slice == 3);
    CHECK(acks[0].code == replication::ack_code::ok);
    CHECK(local(1, keys[0]).second.seq == p1.seq + 1);
  }

  SECTION("a primary behind the follower's epoch is fenced until a table catches up") {
    // The follower sees epoch 2 first; the primary still writes at epoch 1.
    publish(table(102, 0, {1}, 2, 2), {1});
    auto r = write(0, counter_write("p", 2, keys, 1));
    CHECK(r.code == errc::unavailable);
    auto again = write(0, counter_write("p", 3, keys, 1));
    CHECK(again.code == errc::unavailable);
    CHECK(again.message.find("fenced") != std::string::npos);
    // The table reaches the primary: it levels its follower (by a snapshot: the
    // refused write is in its state) and takes writes at epoch 2; the retries
    // count once.
    publish(table(102, 0, {1}, 2, 2), {0});
    REQUIRE(read(0, keys[0]).found);
    auto retry = write(0, counter_write("p", 2, keys, 2));
    REQUIRE(retry.code == errc::none);
    REQUIRE(write(0, counter_write("p", 3, keys, 2)).code == errc::none);
    for (auto& key : keys) {
      CHECK(read(0, key).total == 3);
      same_state(0, 1, key);
    }
  }
}

TEST_CASE_METHOD(replication_fixture,
                 "a promoted follower keeps every acknowledged sample; a retried "
                 "write is a duplicate",
                 "[shard][replication]") {
  auto a = keys_on(0, 2);
  auto b = keys_on(5, 2);
  auto all = a;
  all.insert(all.end(), b.begin(), b.end());
  double acked = 0;
  for (uint64_t seq = 1; seq <= 6; ++seq) {
    auto r = write(0, counter_write("p", seq, all, 1, static_cast<double>(seq)));
    REQUIRE(r.code == errc::none);
    acked += static_cast<double>(seq);
  }
  kill(0);
  // The directory promotes n1 at epoch 2; the dead primary stays a follower.
  current = table(101, 1, {0, 2}, 2, 3);
  publish(current, {1, 2});
  // A read waits until the new primary has brought its followers level.
  for (auto& key : all)
    CHECK(read(1, key).total == acked);
  auto ps = positions(1, {0});
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].primary);
  CHECK(ps[0].epoch == 2);
  // The last write, retried at the new primary, is a duplicate.
  auto retry = write(1, counter_write("p", 6, all, 2, 6));
  CHECK(retry.code == errc::none);
  CHECK(retry.applied == 0);
  CHECK(retry.duplicate_ranges == 2);
  // A stale epoch is refused; new writes are applied and replicated.
  CHECK(write(1, counter_write("p", 7, all, 1)).code == errc::unavailable);
  REQUIRE(write(1, counter_write("p", 7, all, 2, 7)).applied == all.size());
  acked += 7;
  for (auto& key : all) {
    CHECK(read(1, key).total == acked);
    same_state(1, 2, key);
  }
}

TEST_CASE_METHOD(replication_fixture,
                 "a follower promoted without state refuses writes, except in a new "
                 "cluster",
                 "[shard][replication]") {
  auto key = keys_on(6, 1);
  // n2 follows nothing yet (never seeded): the table names it primary at epoch 3.
  current = table(101, 0, {1}, 1, 2);
  publish(current);
  current = table(102, 2, {1}, 3, 2);
  publish(current, {2});
  auto r = write(2, counter_write("p", 1, key, 3));
  CHECK(r.code == errc::unavailable);
  CHECK(r.message.find("without a replica") != std::string::npos);
  auto ps = positions(2, {6});
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].primary);
  CHECK_FALSE(ps[0].seeded);
  // At epoch 1 (a new cluster) it starts empty.
  publish(table(103, 2, {1}, 1, 2), {2});
  CHECK(write(2, counter_write("p", 1, key, 1)).applied == 1);
}

TEST_CASE_METHOD(replication_fixture,
                 "windows are emitted once across a promotion",
                 "[shard][replication]") {
  auto keys = keys_on(7, 3);
  // A subscriber of the keys, subscribed at the primary: it stays subscribed
  // across the promotion (the primary shares its subscribers with its followers).
  auto subs_log = std::make_shared<window_log>();
  auto subscriber = sys.spawn(collector, subs_log);
  std::vector<series::key_route> routes;
  for (auto& key : keys)
    routes.push_back({key, 7});
  self->request(shards[0], 5s, subscribe_atom::value, routes, subscriber)
    .receive([](std::vector<series_view>&) {},
             [&](caf::error& err) { FAIL(to_string(err)); });
  // Window 10 on n0.
  REQUIRE(write(0, counter_write("p", 1, keys, 1, 2, 10 * window_ms + 10)).code
          == errc::none);
  REQUIRE(write(0, counter_write("p", 2, keys, 1, 3, 10 * window_ms + 20)).code
          == errc::none);
  // Window 10 falls due: the next write closes it through a close mark, emitted
  // once a quorum applied the mark. The write after it tells the followers.
  clock = 11 * window_ms + lateness_ms + 1;
  REQUIRE(write(0, counter_write("p", 3, keys, 1, 4, 11 * window_ms + 600)).code
          == errc::none);
  REQUIRE(write(0, counter_write("p", 4, keys, 1, 5, 11 * window_ms + 700)).code
          == errc::none);
  REQUIRE(log->wait([&](auto& vs) { return vs.size() == keys.size(); }));
  // n0 dies with window 11 open; n1 leads at epoch 2 and closes it.
  kill(0);
  publish(table(101, 1, {0, 2}, 2, 3), {1, 2});
  REQUIRE(read(1, keys[0]).total == 14);
  clock = 12 * window_ms + lateness_ms + 1;
  REQUIRE(write(1, counter_write("p", 5, keys, 2, 1, 12 * window_ms + 600)).code
          == errc::none);
  REQUIRE(log->wait([&](auto& vs) { return vs.size() == 2 * keys.size(); }));
  // Nothing else arrived: n1 did not emit window 10 again.
  self->send(shards[1], series::tick_atom::value);
  REQUIRE(read(1, keys[0]).found);
  sync_exporter();
  auto counts = log->counts();
  for (auto& key : keys) {
    CHECK(counts[{key, 10 * window_ms}] == 1);
    CHECK(counts[{key, 11 * window_ms}] == 1);
  }
  REQUIRE(subs_log->wait([&](auto& vs) { return vs.size() == 2 * keys.size(); }));
  self->request(subscriber, 5s, 1).receive([](int) {}, [](caf::error&) {});
  auto sub_counts = subs_log->counts();
  for (auto& key : keys) {
    CHECK(sub_counts[{key, 10 * window_ms}] == 1);
    CHECK(sub_counts[{key, 11 * window_ms}] == 1);
  }
  CHECK(subs_log->size() == 2 * keys.size());
  caf::anon_send_exit(subscriber, caf::exit_reason::user_shutdown);
  std::lock_guard<std::mutex> guard{log->mtx};
  CHECK(log->views.size() == 2 * keys.size());
  for (auto& v : log->views) {
    CHECK(v.node == (v.window.start_ms == 10 * window_ms ? "n0" : "n1"));
    CHECK(v.window.increase == (v.window.start_ms == 10 * window_ms ? 5 : 9));
  }
}

TEST_CASE_METHOD(replication_fixture,
                 "a window closed while the primary is fenced is emitted once, when "
                 "its close mark is committed",
                 "[shard][replication]") {
  auto keys = keys_on(2, 2);
  current = table(101, 0, {1}, 1, 2);
  publish(current);
  REQUIRE(write(0, counter_write("p", 1, keys, 1, 1, 10 * window_ms + 10)).code
          == errc::none);
  // The follower knows epoch 2 before the primary: the close mark and the write
  // that closes window 10 are refused, the primary is fenced.
  publish(table(102, 0, {1}, 2, 2), {1});
  clock = 11 * window_ms + lateness_ms + 1;
  CHECK(write(0, counter_write("p", 2, keys, 1, 1, 11 * window_ms + 600)).code
        == errc::unavailable);
  sync_exporter();
  CHECK(log->size() == 0); // not emitted: the mark is not committed
  // The table reaches the primary: its barrier levels the follower (by a seed
  // that holds the closed window), the mark is committed, the window emitted once.
  publish(table(102, 0, {1}, 2, 2), {0});
  REQUIRE(read(0, keys[0]).found);
  REQUIRE(log->wait([&](auto& vs) { return vs.size() >= keys.size(); }));
  sync_exporter();
  auto counts = log->counts();
  for (auto& key : keys)
    CHECK(counts[{key, 10 * window_ms}] == 1);
  CHECK(log->size() == keys.size());
  for (auto& key : keys)
    same_state(0, 1, key);
}

TEST_CASE_METHOD(replication_fixture,
                 "a deposed primary does not answer a read from its own state") {
  // Shard 0 leads every slice with followers 1 and 2 (epoch 1); a write is acked.
  std::vector<std::string> keys{"deposed_total{k=\"a\"}", "deposed_total{k=\"b\"}"};
  REQUIRE(write(0, counter_write("p", 1, keys, 1)).code == errc::none);
  REQUIRE(read(0, keys[0]).total == 1);
  // An election that shard 0 never hears of: both followers are fenced at epoch 2,
  // as the election's position query does before it commits a new primary (which
  // may then acknowledge writes shard 0 does not have).
  std::vector<uint32_t> xs;
  for (auto& key : keys)
    xs.push_back(keys::slice_of(keys::key_hash(key), slices));
  std::vector<uint64_t> fences(xs.size(), 2);
  for (size_t i : {1, 2})
    self->request(shards[i], 5s, series::position_atom::value, xs, fences,
                  uint64_t{1000}) // the version the election proposes
      .receive([](std::vector<series::replica_position>&) {},
               [&](caf::error& err) { FAIL(to_string(err)); });
  // Everything shard 0 holds was committed: without a quorum round it would answer
  // from its state, older than what the new primary may have acknowledged by now.
  for (auto& key : keys) {
    auto v = read(0, key);
    INFO(key << ": " << v.node);
    CHECK_FALSE(v.found);
    CHECK(v.node.rfind("error", 0) == 0); // refused (unavailable): retry elsewhere
  }
  // Subscriptions' first updates are reads too.
  caf::scoped_actor sub{sys};
  std::vector<series::key_route> routes;
  for (auto& key : keys)
    routes.push_back({key, keys::slice_of(keys::key_hash(key), slices)});
  bool refused = false;
  self->request(shards[0], 5s, subscribe_atom::value, routes, caf::actor{sub})
    .receive([&](std::vector<series_view>& vs) { refused = vs.empty(); },
             [&](caf::error&) { refused = true; });
  CHECK(refused);
}

TEST_CASE_METHOD(replication_fixture,
                 "an election that lost its table version leaves no fence behind") {
  // Shard 0 leads every slice with followers 1 and 2 at epoch 1 (table version 100).
  std::vector<std::string> keys{"lost_election_total{k=\"a\"}"};
  REQUIRE(write(0, counter_write("p", 1, keys, 1)).code == errc::none);
  // An election for table version 101 fences both followers at epoch 3...
  std::vector<uint32_t> xs{keys::slice_of(keys::key_hash(keys[0]), slices)};
  std::vector<uint64_t> fences{3};
  for (size_t i : {1, 2})
    self->request(shards[i], 5s, series::position_atom::value, xs, fences, uint64_t{101})
      .receive([](std::vector<series::replica_position>&) {},
               [&](caf::error& err) { FAIL(to_string(err)); });
  // ...and the followers refuse shard 0 while it is undecided.
  CHECK(write(0, counter_write("p", 2, keys, 1)).code != errc::none);
  // Another table wins version 101 (shard 0 still leads at epoch 1): the election
  // will not commit. The slice must take writes again.
  publish(table(101, 0, {1, 2}, 1));
  uint64_t seq = 3;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  errc code = errc::unavailable;
  while (code != errc::none && std::chrono::steady_clock::now() < deadline) {
    code = write(0, counter_write("p", seq++, keys, 1)).code;
    if (code != errc::none) {
      // A follower that had not applied version 101 yet fenced shard 0 again: its
      // tick (every 100 ms in a node; never in this fixture) probes once more.
      self->send(shards[0], series::tick_atom::value);
      std::this_thread::sleep_for(20ms);
    }
  }
  CHECK(code == errc::none);
  // An election that asks after the shard has the version sets no fence at all.
  for (size_t i : {1, 2})
    self->request(shards[i], 5s, series::position_atom::value, xs, fences, uint64_t{101})
      .receive([](std::vector<series::replica_position>&) {},
               [&](caf::error& err) { FAIL(to_string(err)); });
  CHECK(write(0, counter_write("p", seq, keys, 1)).code == errc::none);
}

TEST_CASE_METHOD(replication_fixture,
                 "a restarted process takes no role from its predecessor's tables") {
  // The table's entry for "a" names incarnation 5; this process of "a" is 6 (it
  // restarted and reads the directory's history): slices the old process led at
  // epoch 1 are not served here, where they would start empty.
  auto old_table = table(200, 0, {}, 1, 1);
  old_table.members[0].incarnation = 5;
  series::shard_config sc;
  sc.node_name = names[0];
  sc.incarnation = 6;
  sc.window_ms = window_ms;
  sc.lateness_ms = lateness_ms;
  sc.tick_ms = 3600 * 1000;
  sc.directory = dir;
  sc.counters = std::make_shared<series::node_counters>();
  sc.initial = old_table;
  sc.clock = [this] { return clock.load(); };
  auto restarted = series::spawn_shard(sys, sc);
  std::vector<std::string> keys{"restarted_total{k=\"a\"}"};
  auto write_to = [&](uint64_t seq) {
    series::shard_write_result out;
    self->request(restarted, 5s, write_atom::value, counter_write("p", seq, keys, 1))
      .receive([&](series::shard_write_result& r) { out = r; },
               [&](caf::error& err) { FAIL(to_string(err)); });
    return out.code;
  };
  CHECK(write_to(1) != errc::none);
  // The table that takes this process back names its incarnation.
  auto back = table(201, 0, {}, 1, 1);
  back.members[0].incarnation = 6;
  self->send(restarted, update_atom::value, back);
  CHECK(write_to(2) == errc::none);
  caf::anon_send_exit(restarted, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(replication_fixture,
                 "with a write quorum of two, the follower on the requester's node "
                 "answers a write it applied in full, and the primary then does not",
                 "[shard][replication]") {
  // Every shard of this fixture shares the test's node: shard 0 leads, and shard 1,
  // its only follower, stands on the requester's node. RF 3 over two replicas: a
  // write quorum of two, reached only through shard 1.
  current = table(101, 0, {1}, 1, 3);
  publish(current);
  auto a = keys_on(1, 2);
  auto b = keys_on(6, 1);
  auto all = a;
  all.insert(all.end(), b.begin(), b.end());
  // Whatever of the two answers is in the mailbox now, without waiting.
  auto take = [&](uint64_t& near_token, int& primary_answers) {
    bool more = true;
    while (more)
      self->receive(
        [&](replication::near_ack_atom, uint64_t token, series::shard_write_result& res) {
          near_token = token;
          CHECK(res.code == errc::none);
          CHECK(res.applied == all.size());
          CHECK(res.duplicate_ranges == 0);
        },
        [&](series::shard_write_result&) { ++primary_answers; },
        caf::after(std::chrono::milliseconds(0)) >> [&] { more = false; });
  };
  auto w = counter_write("p", 1, all, 1, 2);
  w.near_token = 42;
  self->send(shards[0], write_atom::value, w); // not a request: an answer is a message
  uint64_t near_token = 0;
  int primary_answers = 0;
  self->receive(
    [&](replication::near_ack_atom, uint64_t token, series::shard_write_result& res) {
      near_token = token;
      CHECK(res.applied == all.size());
    },
    [&](series::shard_write_result&) { ++primary_answers; },
    caf::after(5s) >> [] {});
  // A write without a number after it: once it is answered, so would the first be
  // (the primary answers in the order the commit point passes them).
  REQUIRE(write(0, counter_write("p", 2, all, 1, 2)).code == errc::none);
  take(near_token, primary_answers);
  CHECK(near_token == 42);
  CHECK(primary_answers == 0); // the follower answered: the primary does not
  // A write without a number gets no near answer, and neither does a retry (a
  // duplicate makes no item) or a write of a quorum above two; the primary answers
  // each of them.
  auto dup = counter_write("p", 1, all, 1, 2);
  dup.near_token = 43;
  CHECK(write(0, dup).duplicate_ranges == 2);
  publish(table(102, 0, {1, 2}, 1, 5)); // RF 5 over three replicas: quorum 3
  auto wide = counter_write("p", 3, all, 1, 2);
  wide.near_token = 44;
  REQUIRE(write(0, wide).code == errc::none);
  // The quorum of three waited for both followers: a near answer would be here.
  near_token = 0;
  take(near_token, primary_answers);
  CHECK(near_token == 0);
  CHECK(primary_answers == 0);
  for (auto& key : all) {
    CHECK(read(0, key).total == 6);
    same_state(0, 1, key);
  }
}

TEST_CASE_METHOD(replication_fixture,
                 "a slice the table names a shard the primary of without it serving "
                 "the slice is marked unserved after a while, for a new election",
                 "[shard][replication]") {
  // Shard 0 leads at epoch 3 by a table only it received (a move or an election
  // that never committed elsewhere): its items raise the followers' fence to 3.
  auto keys = keys_on(2, 1);
  uint32_t s = 2;
  publish(table(101, 0, {1, 2}, 3), {0});
  REQUIRE(write(0, counter_write("p", 1, keys, 3)).code == errc::none);
  // The committed table names shard 1 the primary at epoch 2: its replica knows
  // epoch 3, so it is not promoted, and the slice takes no writes.
  publish(table(102, 1, {0, 2}, 2));
  CHECK(write(1, counter_write("p", 2, keys, 2)).code != errc::none);
  auto marked_after_tick = [&] {
    self->send(shards[1], series::tick_atom::value);
    REQUIRE(positions(1, {s}).size() == 1); // a round trip: the tick was handled
    return counters[1]->slice_unserved[s].load();
  };
  CHECK(marked_after_tick() == 0); // noticed, not yet reported
  clock += series::internal::unserved_report_ms - 1;
  CHECK(marked_after_tick() == 0);
  clock += series::internal::unserved_check_ms + 1;
  CHECK(marked_after_tick() == 2); // reported at the table's epoch
  // Slices it serves are never marked; neither are slices it does not lead.
  CHECK(counters[1]->slice_unserved[s + 1].load() == 0);
  CHECK(counters[0]->slice_unserved[s].load() == 0);
  // An election commits epoch 5 with shard 1 as primary: it is promoted, serves the
  // slice and the mark goes.
  publish(table(103, 1, {0, 2}, 5));
  // It brings its followers level first: a client retries meanwhile.
  auto deadline = std::chrono::steady_clock::now() + 20s;
  series::shard_write_result r;
  do
    r = write(1, counter_write("p", 3, keys, 5));
  while (r.code == errc::unavailable && std::chrono::steady_clock::now() < deadline
         && (std::this_thread::sleep_for(10ms), true));
  INFO(r.message);
  REQUIRE(r.code == errc::none);
  CHECK(read(1, keys[0]).total == 2); // shard 0's write at epoch 3 came along
  clock += series::internal::unserved_check_ms;
  CHECK(marked_after_tick() == 0);
}

TEST_CASE_METHOD(replication_fixture,
                 "a follower behind its primary's commit point asks for a seed",
                 "[shard][replication]") {
  // Shard 0 leads with followers 1 and 2; a write reaches both.
  auto keys = keys_on(3, 1);
  uint32_t s = 3;
  REQUIRE(write(0, counter_write("p", 1, keys, 1)).code == errc::none);
  // The write was acknowledged once one follower had it: wait until shard 1 has it.
  auto level = [&] {
    auto p0 = local(0, keys[0]).second;
    auto p1 = local(1, keys[0]).second;
    return p1.seeded && p1.epoch == p0.epoch && p1.seq == p0.seq;
  };
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!level() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  REQUIRE(level());
  auto pos = local(1, keys[0]).second;
  auto commit_only = [&](uint64_t epoch, uint64_t seq) {
    replication::replica_batch b;
    b.commits.push_back(replication::commit_note{s, epoch, seq});
    replication::replica_acks out;
    self->request(shards[1], 5s, series::replicate_atom::value, std::move(b))
      .receive([&](replication::replica_acks& r) { out = r; },
               [&](caf::error& err) { FAIL(to_string(err)); });
    return out.xs;
  };
  // A commit point it holds: nothing to say.
  CHECK(commit_only(pos.epoch, pos.seq).empty());
  // A commit point of its epoch beyond its last item: it missed an item (the items
  // before a commit point reach it first) and answers as for a gap, naming the
  // commit point, so that its primary seeds it again.
  auto acks = commit_only(pos.epoch, pos.seq + 2);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].slice == s);
  CHECK(acks[0].code == replication::ack_code::gap);
  CHECK(acks[0].seq == pos.seq);
  CHECK(acks[0].item == pos.seq + 2);
  // A new primary's stream continues the sequence numbers: a commit point of a later
  // epoch at the replica's position says nothing, one beyond it is a gap too.
  CHECK(commit_only(pos.epoch + 1, pos.seq).empty());
  acks = commit_only(pos.epoch + 1, pos.seq + 1);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].code == replication::ack_code::gap);
  // A primary the replica is fenced against (an older epoch) is not heard.
  CHECK(commit_only(pos.epoch - 1, pos.seq + 5).empty());
}

TEST_CASE_METHOD(replication_fixture,
                 "a handoff whose import answer is lost acknowledges nothing an "
                 "election can lose",
                 "[shard][replication][handoff]") {
  // Shard 0 leads slice 6 with followers 1 and 2 at epoch 1; one write is acked.
  constexpr uint32_t moving = 6;
  auto key = keys_on(moving, 1)[0];
  uint64_t acked = 0;
  auto r1 = write(0, counter_write("p", 1, {key}, 1));
  REQUIRE(r1.applied == 1);
  acked += r1.applied;
  // Shard 0 hands the slice to shard 1 at epoch 2, and the answer is lost: shard 1
  // may hold the slice at epoch 2 by now, and may have fenced the followers there.
  auto held = std::make_shared<std::promise<void>>();
  auto gate = sys.spawn(relay, caf::actor_cast<caf::actor>(shards[1]), held, true);
  bool lost = false;
  self
    ->request(shards[0], 5s, series::export_atom::value, moving, uint64_t{2},
              caf::actor_cast<series::shard_import_actor>(gate))
    .receive([](uint64_t) {},
             [&](caf::error& err) { lost = err == caf::sec::request_timeout; });
  REQUIRE(lost);
  // So shard 0 takes no write at epoch 1 and answers no read: a write committed
  // at epoch 1 now could be missing from the replica an election takes.
  auto during = write(0, counter_write("p", 2, {key}, 1));
  acked += during.applied;
  CHECK(during.applied == 0);
  CHECK(during.code == errc::unavailable);
  INFO(during.message);
  CHECK_FALSE(read(0, key).found);
  // Should no table settle the slice (the directory leader that started the
  // handoff was deposed), the shard reports it for an election after a while.
  auto marked_after_tick = [&] {
    self->send(shards[0], series::tick_atom::value);
    REQUIRE(positions(0, {moving}).size() == 1); // a round trip: the tick was handled
    return counters[0]->slice_unserved[moving].load();
  };
  CHECK(marked_after_tick() == 0);
  clock += series::internal::unserved_report_ms + series::internal::unserved_check_ms;
  CHECK(marked_after_tick() == 1); // at the table's epoch
  // The import arrives after all: shard 1 leads at epoch 2 and levels shard 2.
  caf::anon_send(gate, release_atom::value);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (positions(2, {moving}).at(0).epoch < 2
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  REQUIRE(positions(2, {moving}).at(0).epoch == 2);
  // An election takes the furthest replica: it holds every acknowledged write.
  CHECK(local(furthest(moving, {0, 1, 2}), key).first.total == static_cast<double>(acked));
  // The table of that election (epoch 3) ends shard 0's wait: it follows shard 1,
  // which takes the retried write.
  current.version = 101;
  current.slices[moving] = slice_assignment{3, 1, {0, 2}};
  publish(current);
  series::shard_write_result retry;
  while (std::chrono::steady_clock::now() < deadline) {
    retry = write(1, counter_write("p", 2, {key}, 3));
    if (retry.applied == 1)
      break;
    std::this_thread::sleep_for(10ms);
  }
  CHECK(retry.applied == 1);
  CHECK(read(1, key).total == 2);
  CHECK_FALSE(positions(0, {moving}).at(0).primary);
  clock += series::internal::unserved_check_ms;
  CHECK(marked_after_tick() == 0);
}

TEST_CASE_METHOD(replication_fixture,
                 "a slice handed to a new primary that dies keeps every write it "
                 "acknowledged",
                 "[shard][replication][handoff]") {
  // Shard 0 leads slice 7 with followers 1 and 2 at epoch 1 and hands it to shard 1
  // at epoch 2; shard 1 acknowledges writes, some sent to it directly (a router with
  // the new table), some forwarded by shard 0 (a router with the old one).
  constexpr uint32_t moving = 7;
  auto key = keys_on(moving, 1)[0];
  REQUIRE(write(0, counter_write("p", 1, {key}, 1)).applied == 1);
  uint64_t exported = 0;
  self
    ->request(shards[0], 5s, series::export_atom::value, moving, uint64_t{2},
              caf::actor_cast<series::shard_import_actor>(shards[1]))
    .receive([&](uint64_t n) { exported = n; },
             [&](caf::error& err) { FAIL(to_string(err)); });
  REQUIRE(exported == 1);
  uint64_t acked = 1;
  uint64_t seq = 1;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (acked < 4 && std::chrono::steady_clock::now() < deadline) {
    auto r = write(0, counter_write("p", ++seq, {key}, 1)); // forwarded
    acked += r.applied;
    if (r.applied == 0)
      std::this_thread::sleep_for(10ms); // shard 1 still levels its followers
  }
  REQUIRE(acked == 4);
  current.version = 101;
  current.slices[moving] = slice_assignment{2, 1, {0, 2}};
  publish(current);
  for (int i = 0; i < 3; ++i) {
    auto r = write(1, counter_write("p", ++seq, {key}, 2));
    REQUIRE(r.code == errc::none);
    acked += r.applied;
  }
  REQUIRE(acked == 7);
  // Shard 1 dies; an election takes the furthest of the other two replicas.
  kill(1);
  CHECK(local(furthest(moving, {0, 2}), key).first.total == static_cast<double>(acked));
}

namespace {

/// A follower shard that refuses every seed and item with `code` at `epoch`,
/// counting the seeds of slice `slice` it was sent.
caf::behavior refusing_follower(caf::event_based_actor*, std::shared_ptr<std::atomic<int>> seeds,
                                uint32_t slice, series::ack_code code, uint64_t epoch) {
  return {
    [=](series::seed_atom, series::slice_snapshot& snap) {
      if (snap.slice == slice)
        ++*seeds;
      return series::replica_ack{snap.slice, code, epoch, 0, 0};
    },
    [=](series::replicate_atom, series::replica_batch& b) {
      series::replica_acks out;
      for (auto& it : b.items)
        out.xs.push_back(series::replica_ack{it.slice, code, epoch, 0, it.seq});
      return out;
    },
    [](int x) { return x; }, // a ping: everything sent before it was handled
  };
}

/// Advances the clock in steps of 100 ms over `ms` and ticks shard 0 at each step,
/// letting the follower `f` answer whatever the tick sent before the next one.
void tick_for(replication_fixture& fx, const caf::actor& f, int64_t ms) {
  for (int64_t t = 0; t < ms; t += 100) {
    fx.clock += 100;
    fx.self->send(fx.shards[0], series::tick_atom::value);
    fx.positions(0, {3});                                  // the tick was handled
    fx.self->request(f, 5s, 1).receive([](int) {}, [](caf::error&) {});
    fx.positions(0, {3});                                  // and the answers to it
  }
}

} // namespace

TEST_CASE_METHOD(replication_fixture,
                 "a follower that cannot take a seed is not sent the slice's state "
                 "every 200 ms",
                 "[shard][replication]") {
  auto seeds = std::make_shared<std::atomic<int>>(0);
  SECTION("refused as unseeded: the retries back off to 1.6 s") {
    fronts.resize(3);
    fronts[2] = sys.spawn(refusing_follower, seeds, 3u, series::ack_code::unseeded,
                          uint64_t{0});
    announce(); // shard 2's handle changes: every stream seeds the stand-in
    tick_for(*this, fronts[2], 3000);
    // At 0, 200, 600, 1400 and 3000 ms; without the back-off every 200 ms (16).
    CHECK(*seeds >= 4);
    CHECK(*seeds <= 6);
  }
  SECTION("refused as stale by a higher epoch: a fenced stream seeds nobody") {
    fronts.resize(3);
    fronts[2] = sys.spawn(refusing_follower, seeds, 3u, series::ack_code::stale,
                          uint64_t{9});
    announce();
    tick_for(*this, fronts[2], 5000);
    // The first seed, then at most max_unfence_probes probes (the stream was
    // fenced above its table's epoch), backing off: 6 in all.
    CHECK(*seeds <= 6);
  }
}
