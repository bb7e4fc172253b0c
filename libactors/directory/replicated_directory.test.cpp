#include "directory/replicated_directory.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "directory/directory.hpp"
#include "tether/tether.hpp"

using namespace std::chrono_literals;
using namespace tether;
using namespace tether::directory;

namespace {

/// Bounds every wait of this file: polls every 20 ms for at most 5 s.
template <class Predicate>
bool eventually(Predicate pred) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred())
      return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

assignment_table make_table(uint64_t version, uint32_t slices) {
  directory_config cfg;
  cfg.members = {member{"tether-1", "127.0.0.1:7481", true},
                 member{"tether-2", "127.0.0.1:7482", true},
                 member{"tether-3", "127.0.0.1:7483", true}};
  cfg.slice_count = slices;
  cfg.replication_factor = 3;
  auto t = initial_table(cfg);
  t.version = version;
  return t;
}

struct status {
  bool ok = false;
  uint32_t self = 0;
  uint32_t leader = 0;
  uint64_t term = 0;
  uint64_t applied = 0;
};

// A directory under /tmp for the members' data, created on first use and removed
// with everything in it when the fixture goes (after its actor system).
struct temp_root {
  const std::string& path() {
    if (path_.empty()) {
      std::string tmpl = "/tmp/tether-directory-XXXXXX";
      if (::mkdtemp(tmpl.data()) == nullptr)
        FAIL("mkdtemp failed");
      path_ = tmpl;
    }
    return path_;
  }
  ~temp_root() {
    std::error_code ec;
    if (!path_.empty())
      std::filesystem::remove_all(path_, ec);
  }
  std::string path_;
};

struct fixture {
  fixture() : sys(init(cfg)) {
    // nop
  }

  ~fixture() {
    for (auto& m : members)
      caf::anon_send_exit(m, caf::exit_reason::user_shutdown);
  }

  static caf::actor_system_config& init(caf::actor_system_config& c) {
    tether::configure(c);
    add_replicated_directory_types(c);
    return c;
  }

  static replicated_directory_config member_config(uint32_t group_size) {
    replicated_directory_config c;
    c.group_size = group_size;
    c.member_names = {"tether-1", "tether-2", "tether-3"};
    c.tick_ms = 10;
    c.raft.election_timeout = 10; // 100..200 ms
    c.raft.heartbeat_interval = 2;
    c.snapshot_every = 2; // compact often: snapshots travel in every test
    return c;
  }

  status status_of(const replicated_directory_actor& m) {
    status out;
    caf::scoped_actor self{sys};
    self->request(m, 500ms, status_atom::value)
      .receive(
        [&](uint32_t id, uint32_t leader, uint64_t term, uint64_t applied) {
          out = status{true, id, leader, term, applied};
        },
        [&](caf::error&) {});
    return out;
  }

  /// The table a member serves, or version 0 with no slices on a failed request.
  assignment_table read(const replicated_directory_actor& m) {
    assignment_table out;
    caf::scoped_actor self{sys};
    self->request(m, 500ms, read_atom::value)
      .receive([&](assignment_table& t) { out = std::move(t); },
               [&](caf::error&) {});
    return out;
  }

  caf::expected<uint64_t> propose(const replicated_directory_actor& m,
                                  assignment_table t) {
    caf::expected<uint64_t> out{caf::sec::request_timeout};
    caf::scoped_actor self{sys};
    self->request(m, 2s, propose_atom::value, std::move(t))
      .receive([&](uint64_t v) { out = v; },
               [&](caf::error& err) { out = std::move(err); });
    return out;
  }

  caf::expected<uint64_t> cas(const replicated_directory_actor& m, assignment_table t) {
    caf::expected<uint64_t> out{caf::sec::request_timeout};
    caf::scoped_actor self{sys};
    self->request(m, 2s, cas_atom::value, std::move(t))
      .receive([&](uint64_t v) { out = v; },
               [&](caf::error& err) { out = std::move(err); });
    return out;
  }

  /// Index into `members` of the live member that is leader, or -1.
  int leader_of(const std::vector<size_t>& alive) {
    for (auto i : alive) {
      auto s = status_of(members[i]);
      if (s.ok && s.leader == s.self)
        return static_cast<int>(i);
    }
    return -1;
  }

  /// A data directory for one member.
  std::string data_dir(uint32_t member) {
    return tmp.path() + "/member-" + std::to_string(member);
  }

  /// Kills a member and returns once it is gone (its files closed).
  void kill(const replicated_directory_actor& m) {
    caf::scoped_actor self{sys};
    caf::anon_send_exit(m, caf::exit_reason::kill);
    self->wait_for(m);
  }

  /// Sends every member the handles of all.
  void wire() {
    std::vector<caf::actor> all;
    for (auto& m : members)
      all.push_back(caf::actor_cast<caf::actor>(m));
    for (auto& m : members)
      caf::anon_send(m, peers_atom::value, all);
  }

  temp_root tmp; // declared first: removed after the actor system is gone
  caf::actor_system_config cfg;
  caf::actor_system sys;
  std::vector<replicated_directory_actor> members;
};

} // namespace

TEST_CASE("directory commands and raft payloads survive CAF's binary format") {
  caf::actor_system_config c;
  fixture::init(c);
  caf::actor_system sys{c};
  auto t = make_table(7, 8);
  command_kind kind;
  assignment_table back;
  REQUIRE(decode_command(sys, encode_command(sys, command_kind::propose_table, t),
                         kind, back));
  CHECK(kind == command_kind::propose_table);
  CHECK(back.version == 7);
  CHECK(back.slices.size() == 8);
  CHECK(back.members.size() == 3);
  CHECK(back.primary_name(1) == t.primary_name(1));
  CHECK_FALSE(decode_command(sys, std::string{"\x09garbage"}, kind, back));
  REQUIRE(decode_table(sys, encode_table(sys, t), back));
  CHECK(back.slices[5].followers == t.slices[5].followers);
  // A payload as members ship it.
  raft::append_entries x;
  x.term = raft::term{3};
  x.prev_log_index = raft::log_index{4};
  x.entries.push_back(raft::entry{raft::term{3}, raft::log_index{5},
                                  raft::entry_kind::noop, "abc"});
  x.leader_commit = raft::log_index{4};
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  REQUIRE_FALSE(sink(x));
  raft::append_entries y;
  caf::binary_deserializer source{sys, buf};
  REQUIRE_FALSE(source(y));
  CHECK(y.term == x.term);
  CHECK(y.entries == x.entries);
  CHECK(y.leader_commit == x.leader_commit);
}

TEST_CASE_METHOD(fixture, "a single directory member proposes and reads back") {
  auto c = member_config(1);
  c.bootstrap = make_table(1, 16);
  members.push_back(spawn_replicated_directory(sys, c));
  auto& m = members[0];
  // The bootstrap table is applied once the member elects itself.
  REQUIRE(eventually([&] { return read(m).version == 1; }));
  CHECK(status_of(m).leader == 1);
  for (uint64_t i = 0; i < 5; ++i) {
    auto t = make_table(0, 16);
    t.slices[3].epoch = 10 + i;
    auto v = propose(m, t);
    REQUIRE(v);
    CHECK(*v == 2 + i); // versions strictly grow even if the proposal's do not
  }
  auto t = read(m);
  CHECK(t.version == 6);
  CHECK(t.slices.size() == 16);
  CHECK(t.slices[3].epoch == 14);
  // A proposal with a higher version keeps it.
  auto v = propose(m, make_table(42, 16));
  REQUIRE(v);
  CHECK(*v == 42);
  CHECK(read(m).version == 42);
}

TEST_CASE_METHOD(fixture, "a conditional proposal applies only to the table it was "
                          "read from") {
  auto c = member_config(1);
  c.bootstrap = make_table(1, 16);
  members.push_back(spawn_replicated_directory(sys, c));
  auto& m = members[0];
  REQUIRE(eventually([&] { return read(m).version == 1; }));
  // Two read-modify-write cycles start from version 1; the first one wins.
  auto a = read(m);
  auto b = read(m);
  a.version += 1;
  a.slices[2].epoch = 7;
  b.version += 1;
  b.slices[5].epoch = 9;
  auto va = cas(m, a);
  REQUIRE(va);
  CHECK(*va == 2);
  auto vb = cas(m, b);
  REQUIRE_FALSE(vb);
  CHECK(code_of(vb.error()) == errc::unavailable);
  CHECK(message_of(vb.error()).find("changed since it was read") != std::string::npos);
  // Nothing of the losing proposal applied.
  auto t = read(m);
  CHECK(t.version == 2);
  CHECK(t.slices[2].epoch == 7);
  CHECK(t.slices[5].epoch != 9);
  // Read again, and it applies.
  t.version += 1;
  t.slices[5].epoch = 9;
  auto vc = cas(m, t);
  REQUIRE(vc);
  CHECK(*vc == 3);
  CHECK(read(m).slices[5].epoch == 9);
}

TEST_CASE_METHOD(fixture, "three directory members replicate, fail over and refuse "
                          "writes on followers") {
  members = spawn_replicated_directory_group(sys, member_config(3));
  std::vector<size_t> all{0, 1, 2};
  int leader = -1;
  REQUIRE(eventually([&] { return (leader = leader_of(all)) >= 0; }));
  auto follower = static_cast<size_t>((leader + 1) % 3);
  auto other = static_cast<size_t>((leader + 2) % 3);

  // A subscriber of a follower.
  caf::scoped_actor sub{sys};
  assignment_table initial;
  sub->request(members[follower], 1s, subscribe_atom::value,
               caf::actor_cast<caf::actor>(sub))
    .receive([&](assignment_table& t) { initial = std::move(t); },
             [&](caf::error& err) { FAIL(to_string(err)); });
  CHECK(initial.version == 0);

  // A proposal to the leader is applied on all three.
  auto t1 = make_table(1, 16);
  t1.slices[7].primary = 2;
  auto v = propose(members[static_cast<size_t>(leader)], t1);
  REQUIRE(v);
  CHECK(*v == 1);
  for (auto i : all)
    REQUIRE(eventually([&] { return read(members[i]).version == 1; }));
  CHECK(read(members[other]).slices[7].primary == 2);

  // ... and pushed to the follower's subscriber.
  assignment_table pushed;
  bool timed_out = false;
  while (pushed.version < 1 && !timed_out)
    sub->receive([&](update_atom, assignment_table& t) { pushed = std::move(t); },
                 caf::after(5s) >> [&] { timed_out = true; });
  REQUIRE_FALSE(timed_out);
  CHECK(pushed.version == 1);
  CHECK(pushed.slices[7].primary == 2);

  // A follower refuses writes and names the leader.
  REQUIRE(eventually([&] {
    return status_of(members[follower]).leader == static_cast<uint32_t>(leader + 1);
  }));
  auto refused = propose(members[follower], make_table(5, 16));
  REQUIRE_FALSE(refused);
  CHECK(code_of(refused.error()) == errc::unavailable);
  auto what = message_of(refused.error());
  CHECK(what.find("leader is member " + std::to_string(leader + 1))
        != std::string::npos);
  CHECK(read(members[follower]).version == 1);

  // More entries, so that the log is compacted (snapshot_every = 2).
  for (uint64_t i = 2; i <= 4; ++i) {
    auto r = propose(members[static_cast<size_t>(leader)], make_table(i, 16));
    REQUIRE(r);
    CHECK(*r == i);
  }

  // Kill the leader: the other two elect a new one and keep the table.
  auto old_term = status_of(members[static_cast<size_t>(leader)]).term;
  caf::anon_send_exit(members[static_cast<size_t>(leader)], caf::exit_reason::kill);
  std::vector<size_t> rest{follower, other};
  int next = -1;
  REQUIRE(eventually([&] {
    next = leader_of(rest);
    return next >= 0 && status_of(members[static_cast<size_t>(next)]).term > old_term;
  }));
  CHECK(next != leader);
  // Version 4 was committed (acknowledged), so the new leader holds it; a follower
  // that had not learned the commit yet applies it with the new leader's first
  // commit (reads on followers may lag).
  for (auto i : rest) {
    REQUIRE(eventually([&] { return read(members[i]).version == 4; }));
    CHECK(read(members[i]).slices.size() == 16);
  }
  auto t5 = make_table(0, 16);
  t5.slices[0].epoch = 99;
  auto v5 = propose(members[static_cast<size_t>(next)], t5);
  REQUIRE(v5);
  CHECK(*v5 == 5);
  for (auto i : rest)
    REQUIRE(eventually([&] {
      auto t = read(members[i]);
      return t.version == 5 && t.slices[0].epoch == 99;
    }));
}

TEST_CASE_METHOD(fixture, "a directory member wired late catches up from a snapshot") {
  for (uint32_t i = 1; i <= 3; ++i) {
    auto c = member_config(3);
    c.self = i;
    members.push_back(spawn_replicated_directory(sys, c));
  }
  // Members 1 and 2 see each other; member 3 is not wired yet.
  std::vector<caf::actor> two{caf::actor_cast<caf::actor>(members[0]),
                              caf::actor_cast<caf::actor>(members[1]), caf::actor{}};
  caf::anon_send(members[0], peers_atom::value, two);
  caf::anon_send(members[1], peers_atom::value, two);
  std::vector<size_t> pair{0, 1};
  int leader = -1;
  REQUIRE(eventually([&] { return (leader = leader_of(pair)) >= 0; }));
  for (uint64_t i = 1; i <= 6; ++i) {
    auto r = propose(members[static_cast<size_t>(leader)], make_table(i, 16));
    REQUIRE(r);
  }
  CHECK(read(members[2]).version == 0);
  std::vector<caf::actor> all;
  for (auto& m : members)
    all.push_back(caf::actor_cast<caf::actor>(m));
  for (auto& m : members)
    caf::anon_send(m, peers_atom::value, all);
  REQUIRE(eventually([&] { return read(members[2]).version == 6; }));
  CHECK(read(members[2]).slices.size() == 16);
}

TEST_CASE_METHOD(fixture, "a single directory member restarts from its data "
                          "directory") {
  auto c = member_config(1);
  c.bootstrap = make_table(1, 16);
  c.data_dir = data_dir(1);
  members.push_back(spawn_replicated_directory(sys, c));
  REQUIRE(eventually([&] { return read(members[0]).version == 1; }));
  for (uint64_t i = 0; i < 5; ++i) {
    auto t = make_table(0, 16);
    t.slices[3].epoch = 10 + i;
    REQUIRE(propose(members[0], t));
  }
  auto before = status_of(members[0]);
  REQUIRE(before.ok);
  REQUIRE(before.applied == 7); // no-op, bootstrap, five tables
  kill(members[0]);
  members[0] = spawn_replicated_directory(sys, c);
  // Loaded at spawn: the term, and the table of the last snapshot (index 6 with
  // snapshot_every = 2, i.e. version 5) before the member has elected itself.
  auto after = status_of(members[0]);
  REQUIRE(after.ok);
  CHECK(after.term >= before.term);
  CHECK(read(members[0]).version >= 5);
  // Elected again, it commits its log and applies the last entry once more.
  REQUIRE(eventually([&] {
    auto t = read(members[0]);
    return t.version == 6 && t.slices[3].epoch == 14;
  }));
  auto later = status_of(members[0]);
  CHECK(later.term > before.term);
  CHECK(later.applied >= 7);
  auto t = make_table(0, 16);
  auto v = propose(members[0], t);
  REQUIRE(v);
  CHECK(*v == 7);
}

TEST_CASE_METHOD(fixture, "a killed directory member restarts from its data "
                          "directory with its term and table") {
  auto c = member_config(3);
  c.data_dir = tmp.path(); // member i in <data_dir>/member-i
  members = spawn_replicated_directory_group(sys, c);
  auto config_of = [&](uint32_t id) {
    auto ci = c;
    ci.self = id;
    ci.data_dir = data_dir(id);
    return ci;
  };
  std::vector<size_t> all{0, 1, 2};
  int leader = -1;
  REQUIRE(eventually([&] { return (leader = leader_of(all)) >= 0; }));
  for (uint64_t i = 1; i <= 4; ++i)
    REQUIRE(propose(members[static_cast<size_t>(leader)], make_table(i, 16)));
  for (auto i : all)
    REQUIRE(eventually([&] { return read(members[i]).version == 4; }));

  // Kill the leader; the other two go on without it.
  auto victim = static_cast<size_t>(leader);
  auto before = status_of(members[victim]);
  REQUIRE(before.ok);
  kill(members[victim]);
  std::vector<size_t> rest;
  for (auto i : all)
    if (i != victim)
      rest.push_back(i);
  int next = -1;
  REQUIRE(eventually([&] { return (next = leader_of(rest)) >= 0; }));
  auto t5 = make_table(5, 16);
  t5.slices[1].epoch = 55;
  REQUIRE(propose(members[static_cast<size_t>(next)], t5));

  // The same member, spawned again on its directory and not wired yet: nothing
  // reaches it, so term and table can only come from its files.
  members[victim] = spawn_replicated_directory(sys, config_of(before.self));
  auto after = status_of(members[victim]);
  REQUIRE(after.ok);
  CHECK(after.self == before.self);
  CHECK(after.term >= before.term);
  auto restored = read(members[victim]);
  CHECK(restored.version >= 3); // its last snapshot
  CHECK(restored.slices.size() == 16);

  // Wired again, it catches up and the group makes progress with all three.
  wire();
  REQUIRE(eventually([&] {
    auto t = read(members[victim]);
    return t.version == 5 && t.slices[1].epoch == 55;
  }));
  int now = -1;
  caf::expected<uint64_t> v6{caf::sec::request_timeout};
  REQUIRE(eventually([&] {
    now = leader_of(all);
    if (now < 0)
      return false;
    v6 = propose(members[static_cast<size_t>(now)], make_table(6, 16));
    return static_cast<bool>(v6);
  }));
  CHECK(*v6 == 6);
  for (auto i : all)
    REQUIRE(eventually([&] { return read(members[i]).version == 6; }));
}

TEST_CASE_METHOD(fixture, "a directory member refuses a data directory in use") {
  auto c = member_config(1);
  c.data_dir = data_dir(1);
  members.push_back(spawn_replicated_directory(sys, c));
  REQUIRE(status_of(members[0]).ok);
  auto second = spawn_replicated_directory(sys, c);
  members.push_back(second); // stopped by the fixture should it not exit
  caf::scoped_actor self{sys};
  self->monitor(second);
  caf::error reason;
  self->receive([&](caf::down_msg& msg) { reason = msg.reason; },
                caf::after(5s) >> [&] { FAIL("the second member did not exit"); });
  CHECK(code_of(reason) == errc::internal);
  CHECK(message_of(reason).find("in use") != std::string::npos);
  // The first one still serves.
  CHECK(status_of(members[0]).ok);
}
