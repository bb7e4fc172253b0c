#include "directory/replicated_directory.hpp"

#include "directory/subscribers.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <utility>
#include <variant>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "directory/raft/raft_node.hpp"
#include "directory/raft/raft_storage.hpp"
#include "tether/tether.hpp"

namespace tether::directory {

// -- command and snapshot encoding ----------------------------------------------

std::string encode_command(caf::actor_system& sys, command_kind kind,
                           const assignment_table& table) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  auto k = static_cast<uint8_t>(kind);
  auto copy = table;
  if (auto err = sink(k, copy)) {
    std::fprintf(stderr, "tether.directory: cannot encode a command: %s\n",
                 to_string(err).c_str());
    std::abort();
  }
  return std::string{buf.begin(), buf.end()};
}

bool decode_command(caf::actor_system& sys, const std::string& bytes,
                    command_kind& kind, assignment_table& table) {
  caf::binary_deserializer source{sys, bytes.data(), bytes.size()};
  uint8_t k = 0;
  assignment_table t;
  if (source(k, t))
    return false;
  if (k != static_cast<uint8_t>(command_kind::propose_table)
      && k != static_cast<uint8_t>(command_kind::bootstrap)
      && k != static_cast<uint8_t>(command_kind::replace_if))
    return false;
  kind = static_cast<command_kind>(k);
  table = std::move(t);
  return true;
}

std::string encode_table(caf::actor_system& sys, const assignment_table& table) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  auto copy = table;
  if (auto err = sink(copy)) {
    std::fprintf(stderr, "tether.directory: cannot encode a snapshot: %s\n",
                 to_string(err).c_str());
    std::abort();
  }
  return std::string{buf.begin(), buf.end()};
}

bool decode_table(caf::actor_system& sys, const std::string& bytes,
                  assignment_table& table) {
  caf::binary_deserializer source{sys, bytes.data(), bytes.size()};
  assignment_table t;
  if (source(t))
    return false;
  table = std::move(t);
  return true;
}

void add_replicated_directory_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<raft::entry>("tether.raft.entry");
  cfg.add_message_type<std::vector<raft::entry>>("std::vector<tether.raft.entry>");
  cfg.add_message_type<raft::snapshot>("tether.raft.snapshot");
  cfg.add_message_type<raft::vote_request>("tether.raft.vote_request");
  cfg.add_message_type<raft::vote_reply>("tether.raft.vote_reply");
  cfg.add_message_type<raft::append_entries>("tether.raft.append_entries");
  cfg.add_message_type<raft::append_reply>("tether.raft.append_reply");
  cfg.add_message_type<raft::install_snapshot>("tether.raft.install_snapshot");
  cfg.add_message_type<raft::snapshot_reply>("tether.raft.snapshot_reply");
  cfg.add_message_type<replicated_directory_actor>(
    "tether.replicated_directory_actor");
}

// -- the member actor -------------------------------------------------------------

namespace {

struct pending_proposal {
  uint64_t term = 0;
  uint64_t expires = 0; // tick count
  caf::typed_response_promise<uint64_t> promise;
};

struct member_state {
  static inline const char* name = "tether.replicated_directory";
  replicated_directory_config cfg;
  // Declared before `node`, which refers to it, so that it outlives the node.
  std::unique_ptr<raft::raft_storage> storage;
  std::unique_ptr<raft::raft_node> node;
  // Index i = member i + 1. Weak references: members referring to each other must
  // not keep each other alive.
  std::vector<caf::actor_addr> peers;
  assignment_table table;        // the applied state machine
  uint64_t applied = 0;          // last applied log index
  uint64_t ticks = 0;
  uint64_t bootstrap_term = 0;   // term in which this member proposed the bootstrap
  subscriber_list subscribers;
  std::map<uint64_t, pending_proposal> pending; // by log index
  uint32_t leader_seen = 0;      // the leader last recorded as an event (0: none)
};

using member_ptr = replicated_directory_actor::stateful_pointer<member_state>;

std::string member_label(const replicated_directory_config& cfg, uint32_t id) {
  std::string out = "member " + std::to_string(id);
  if (id >= 1 && id <= cfg.member_names.size() && !cfg.member_names[id - 1].empty())
    out += " (" + cfg.member_names[id - 1] + ")";
  return out;
}

/// Records a newly known leader in the node's event log.
void note_leader(member_ptr self) {
  auto& st = self->state;
  auto l = st.node->leader();
  if (!st.cfg.events || !l || l->value == st.leader_seen)
    return;
  st.leader_seen = l->value;
  st.cfg.events->record("leader", "directory leader is " + member_label(st.cfg, l->value)
                                    + " in term "
                                    + std::to_string(st.node->current_term().value));
}

caf::error not_leader(member_ptr self) {
  auto& st = self->state;
  std::string msg = "directory " + member_label(st.cfg, st.cfg.self)
                    + " is not the leader; ";
  if (auto l = st.node->leader(); l && *l != st.node->self())
    msg += "leader is " + member_label(st.cfg, l->value);
  else
    msg += "leader unknown (election in progress)";
  return make_error(errc::unavailable, std::move(msg));
}

void set_table(member_ptr self, assignment_table table) {
  auto& st = self->state;
  st.table = std::move(table);
  st.subscribers.push(st.table);
}

void ship(member_ptr self, raft::message& msg) {
  auto& st = self->state;
  auto idx = static_cast<size_t>(msg.to.value) - 1;
  if (msg.to.value == 0 || idx >= st.peers.size())
    return; // not wired yet: Raft retransmits on the next heartbeat or election
  auto dest = caf::actor_cast<replicated_directory_actor>(st.peers[idx]);
  if (!dest)
    return; // gone: like a lost message
  auto from = msg.from.value;
  std::visit([&](auto& x) { self->send(dest, raft_atom::value, from, std::move(x)); },
             msg.payload);
}

void apply_entry(member_ptr self, const raft::entry& e) {
  auto& st = self->state;
  st.applied = e.index.value;
  bool ok = false;
  uint64_t version = 0;
  std::string why = "directory proposal was superseded; retry";
  if (e.kind == raft::entry_kind::command) {
    command_kind kind;
    assignment_table t;
    if (!decode_command(self->system(), e.command, kind, t)) {
      // Every member skips the same malformed entry: the state stays identical.
      std::fprintf(stderr,
                   "tether.directory: member %u skips malformed command at %llu\n",
                   st.cfg.self, static_cast<unsigned long long>(e.index.value));
    } else if (kind == command_kind::propose_table) {
      t.version = std::max(t.version, st.table.version + 1);
      version = t.version;
      set_table(self, std::move(t));
      ok = true;
    } else if (kind == command_kind::replace_if) {
      if (t.version == st.table.version + 1) {
        version = t.version;
        set_table(self, std::move(t));
        ok = true;
      } else {
        why = "the directory table changed since it was read (now version "
              + std::to_string(st.table.version) + "); read it again";
      }
    } else if (st.table.version == 0) { // bootstrap of an empty table
      t.version = std::max<uint64_t>(t.version, 1);
      version = t.version;
      set_table(self, std::move(t));
      ok = true;
    } else { // bootstrap of a table that already has one: nothing to do
      version = st.table.version;
      ok = true;
    }
  }
  auto i = st.pending.find(e.index.value);
  if (i == st.pending.end())
    return;
  if (ok && i->second.term == e.term.value)
    i->second.promise.deliver(version);
  else
    i->second.promise.deliver(make_error(errc::unavailable, std::move(why)));
  st.pending.erase(i);
}

// The Raft member halted on a storage failure: its in-memory state may be ahead
// of its storage, so it must not go on. Answers what waits and exits.
void stop_on_storage_failure(member_ptr self) {
  auto& st = self->state;
  auto what = "directory " + member_label(st.cfg, st.cfg.self)
              + " stops: its Raft storage failed: " + st.node->failure().message();
  std::fprintf(stderr, "tether.directory: %s\n", what.c_str());
  for (auto& kvp : st.pending)
    kvp.second.promise.deliver(make_error(errc::unavailable, what));
  st.pending.clear();
  self->quit(make_error(errc::internal, std::move(what)));
}

// Drains the Raft member's outputs: snapshot, committed entries, compaction,
// bootstrap, messages; then settles proposals this member can no longer commit.
void drive(member_ptr self) {
  auto& st = self->state;
  auto& n = *st.node;
  for (;;) {
    if (auto snap = n.take_snapshot_to_apply()) {
      assignment_table t;
      if (decode_table(self->system(), snap->state, t)) {
        st.applied = snap->last_index.value;
        if (t.version != st.table.version)
          set_table(self, std::move(t));
      } else {
        std::fprintf(stderr, "tether.directory: member %u got a malformed snapshot\n",
                     st.cfg.self);
        std::abort();
      }
    }
    for (auto& e : n.take_committed())
      apply_entry(self, e);
    auto every = st.cfg.snapshot_every;
    if (every > 0 && st.applied >= n.snapshot().last_index.value + every)
      n.compact(raft::log_index{st.applied}, encode_table(self->system(), st.table));
    if (n.is_leader() && st.table.version == 0 && st.cfg.bootstrap.version > 0
        && st.bootstrap_term != n.current_term().value) {
      st.bootstrap_term = n.current_term().value;
      n.propose(encode_command(self->system(), command_kind::bootstrap,
                               st.cfg.bootstrap));
      continue; // a single member commits at once: apply it before shipping
    }
    break;
  }
  if (n.halted()) {
    stop_on_storage_failure(self);
    return;
  }
  for (auto& msg : n.take_outbox())
    ship(self, msg);
  note_leader(self);
  if (!n.is_leader() && !st.pending.empty()) {
    auto err = not_leader(self);
    for (auto& kvp : st.pending)
      kvp.second.promise.deliver(err);
    st.pending.clear();
  }
}

/// Appends a table command on the leader; the reply comes once it applied.
caf::result<uint64_t> propose_command(member_ptr self, command_kind kind,
                                      const assignment_table& table) {
  auto& st = self->state;
  auto& n = *st.node;
  if (!n.is_leader())
    return not_leader(self);
  auto term = n.current_term().value;
  auto idx = n.propose(encode_command(self->system(), kind, table));
  if (n.halted()) {
    stop_on_storage_failure(self);
    return make_error(errc::unavailable,
                      "directory member stopped: its Raft storage failed");
  }
  if (!idx)
    return not_leader(self);
  auto rp = self->make_response_promise<uint64_t>();
  auto ticks = std::max<uint64_t>(
    1, st.cfg.propose_timeout_ms / std::max<uint32_t>(st.cfg.tick_ms, 1));
  st.pending.emplace(idx->value, pending_proposal{term, st.ticks + ticks, rp});
  drive(self);
  return rp;
}

template <class Payload>
auto raft_handler(member_ptr self) {
  return [self](raft_atom, uint32_t from, Payload& x) {
    auto& n = *self->state.node;
    if (from == 0 || from > n.members().size() || from == n.self().value)
      return; // not a member of this group
    auto& st = self->state;
    if (st.cfg.bind_members
        && (from > st.peers.size()
            || caf::actor_cast<caf::actor_addr>(self->current_sender()) != st.peers[from - 1]))
      return; // not sent by the member it names
    n.receive(raft::message{raft::member_id{from}, n.self(), raft::payload{std::move(x)}});
    drive(self);
  };
}

replicated_directory_actor::behavior_type
member_behavior(member_ptr self, replicated_directory_config cfg) {
  auto& st = self->state;
  std::vector<raft::member_id> ids;
  for (uint32_t i = 1; i <= std::max<uint32_t>(cfg.group_size, 1); ++i)
    ids.emplace_back(i);
  if (!cfg.data_dir.empty())
    st.storage = std::make_unique<raft::file_storage>(cfg.data_dir);
  st.node = std::make_unique<raft::raft_node>(raft::member_id{cfg.self}, ids, cfg.raft,
                                              cfg.seed * 1000003u + cfg.self,
                                              st.storage.get());
  st.cfg = std::move(cfg);
  if (st.node->halted()) {
    auto what = "directory " + member_label(st.cfg, st.cfg.self)
                + " cannot load its Raft state: " + st.node->failure().message();
    std::fprintf(stderr, "tether.directory: %s\n", what.c_str());
    self->quit(make_error(errc::internal, std::move(what)));
  } else {
    drive(self); // a stored snapshot becomes the table before the first request
  }
  auto tick = std::chrono::milliseconds{std::max<uint32_t>(st.cfg.tick_ms, 1)};
  self->delayed_send(self, tick, raft_tick_atom::value);
  // An error that arrives as a message (another node's actor answering an
  // asynchronous send with one, say) must not stop this actor: CAF's default
  // handler would quit it.
  self->set_error_handler([](caf::error&) {});
  self->set_down_handler(
    [self](caf::down_msg& msg) { self->state.subscribers.drop(msg.source); });
  return {
    [self](read_atom) { return self->state.table; },
    [self](subscribe_atom, caf::actor& who) {
      self->state.subscribers.add(self, who);
      return self->state.table;
    },
    [self](propose_atom, assignment_table& table) -> caf::result<uint64_t> {
      return propose_command(self, command_kind::propose_table, table);
    },
    [self](cas_atom, assignment_table& table) -> caf::result<uint64_t> {
      return propose_command(self, command_kind::replace_if, table);
    },
    [self](peers_atom, std::vector<caf::actor>& peers) {
      auto& st = self->state;
      auto& sender = self->current_sender();
      if (st.cfg.bind_members && (!sender || sender->node() != self->node()))
        return; // only this node's supervisor says who the peers are
      st.peers.clear();
      for (auto& p : peers)
        st.peers.push_back(p ? p.address() : caf::actor_addr{});
    },
    [self](status_atom) -> caf::result<uint32_t, uint32_t, uint64_t, uint64_t> {
      auto& st = self->state;
      auto l = st.node->leader();
      return {st.cfg.self, l ? l->value : 0u, st.node->current_term().value,
              st.applied};
    },
    [self](raft_tick_atom) {
      auto& st = self->state;
      ++st.ticks;
      st.node->tick();
      for (auto i = st.pending.begin(); i != st.pending.end();) {
        if (i->second.expires <= st.ticks) {
          i->second.promise.deliver(make_error(
            errc::unavailable, "directory proposal not committed in time; retry"));
          i = st.pending.erase(i);
        } else {
          ++i;
        }
      }
      drive(self);
      self->delayed_send(self,
                         std::chrono::milliseconds{std::max<uint32_t>(st.cfg.tick_ms, 1)},
                         raft_tick_atom::value);
    },
    raft_handler<raft::vote_request>(self),
    raft_handler<raft::vote_reply>(self),
    raft_handler<raft::append_entries>(self),
    raft_handler<raft::append_reply>(self),
    raft_handler<raft::install_snapshot>(self),
    raft_handler<raft::snapshot_reply>(self),
  };
}

} // namespace

replicated_directory_actor
spawn_replicated_directory(caf::actor_system& sys, replicated_directory_config cfg) {
  return sys.spawn(member_behavior, std::move(cfg));
}

std::vector<replicated_directory_actor>
spawn_replicated_directory_group(caf::actor_system& sys,
                                 replicated_directory_config cfg) {
  std::vector<replicated_directory_actor> members;
  auto n = std::max<uint32_t>(cfg.group_size, 1);
  for (uint32_t i = 1; i <= n; ++i) {
    auto c = cfg;
    c.self = i;
    c.group_size = n;
    if (!cfg.data_dir.empty())
      c.data_dir = cfg.data_dir + "/member-" + std::to_string(i);
    members.push_back(spawn_replicated_directory(sys, std::move(c)));
  }
  std::vector<caf::actor> handles;
  for (auto& m : members)
    handles.push_back(caf::actor_cast<caf::actor>(m));
  for (auto& m : members)
    caf::anon_send(m, peers_atom::value, handles);
  return members;
}

} // namespace tether::directory
