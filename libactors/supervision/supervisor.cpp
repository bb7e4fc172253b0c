#include "supervision/supervisor.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "events/table_events.hpp"
#include "tether/tether.hpp"
#include "wire/codec.hpp"

namespace tether::supervision {

namespace {

using std::chrono::milliseconds;

struct peer_entry {
  peer_info info;
  int64_t last_heard = 0; ///< ms, node clock
  uint64_t series = 0;
  uint64_t samples_applied = 0;
  uint64_t windows_closed = 0;
  bool suspected = false; ///< recorded as suspect since its last heartbeat
};

struct supervisor_state {
  static inline const char* name = "tether.supervisor";

  supervisor_config cfg;
  peer_info self_info;
  bool started = false;
  std::map<std::string, peer_entry> peers; ///< connected peers by name
  std::set<std::string> addresses;         ///< cluster addresses to stay connected to
  std::set<std::string> connecting;        ///< addresses with a connect under way
  int64_t next_connect = 0;
  /// Whether the directory lists this node, up, with this gateway address.
  bool joined = false;
  bool joining = false;
  int64_t next_join = 0;
  size_t join_rr = 0; ///< which controller to ask next
  /// The latest table, and the applied counts of the slices at the last load
  /// report (to turn them into rates).
  assignment_table table;
  std::vector<uint64_t> applied_then;
  int64_t loads_at = 0;
  /// The last reason a hello claiming a name was refused, by that name.
  std::map<std::string, std::string> refused;
  /// Peers whose connection broke, by name, until they say hello again.
  std::map<std::string, int64_t> lost;
  bool suspecting = false; ///< the last report named someone

  bool connected_to(const std::string& address) const {
    if (address == self_info.cluster)
      return true;
    for (auto& [_, p] : peers)
      if (p.info.cluster == address)
        return true;
    return false;
  }
};

using supervisor_ptr = supervisor_actor::stateful_pointer<supervisor_state>;

/// Records a cluster event in the node's event log, if it has one.
void note(supervisor_ptr self, std::string kind, std::string text) {
  if (self->state.cfg.events)
    self->state.cfg.events->record(std::move(kind), std::move(text));
}

int64_t now_ms() {
  return wire::now_ms();
}

/// Tells the node's actors what changed in the membership.
void publish(supervisor_ptr self) {
  auto& st = self->state;
  auto& cfg = st.cfg;
  // Router and local shards: every connected node's shards (its own included);
  // the shards stream their slices to their followers' shards.
  std::vector<series::node_shards> nodes;
  nodes.push_back({st.self_info.name, st.self_info.shards});
  for (auto& [name, p] : st.peers)
    nodes.push_back({name, p.info.shards});
  for (auto& shard : st.self_info.shards)
    caf::anon_send(caf::actor_cast<series::shard_replica_actor>(shard),
                   series::node_shards_atom::value, nodes);
  caf::anon_send(cfg.router, routing::remote_shards_atom::value, std::move(nodes));
  // Directory members by id: Raft peers, and the client's choices (own first).
  std::map<uint32_t, directory::replicated_directory_actor> members;
  if (st.self_info.directory_id > 0)
    members[st.self_info.directory_id] = st.self_info.directory;
  for (auto& [_, p] : st.peers)
    if (p.info.directory_id > 0 && p.info.directory)
      members[p.info.directory_id] = p.info.directory;
  std::vector<directory::replicated_directory_actor> via;
  if (st.self_info.directory)
    via.push_back(st.self_info.directory);
  for (auto& [id, m] : members)
    if (m != st.self_info.directory)
      via.push_back(m);
  caf::anon_send(cfg.client, directory::via_atom::value, std::move(via));
  if (st.self_info.directory) {
    uint32_t n = members.empty() ? 0 : members.rbegin()->first;
    std::vector<caf::actor> raft_peers(n);
    for (auto& [id, m] : members)
      raft_peers[id - 1] = caf::actor_cast<caf::actor>(m);
    self->send(st.self_info.directory, directory::peers_atom::value,
               std::move(raft_peers));
  }
  if (st.self_info.controller) {
    std::vector<directory::agent> agents;
    agents.push_back({st.self_info.name, caf::actor_cast<caf::actor>(self)});
    for (auto& [name, p] : st.peers)
      agents.push_back({name, p.info.supervisor});
    self->send(st.self_info.controller, directory::agents_atom::value,
               std::move(agents));
  }
}

/// Why a hello does not count, with node-to-node TLS: its handles must all live on
/// one node, and that node's certificate must carry the name the hello claims.
/// Empty when it counts (always, without TLS).
std::string refusal(supervisor_ptr self, const peer_info& info) {
  auto& names_of = self->state.cfg.certificate_names;
  if (!names_of)
    return {};
  auto node = info.supervisor.node();
  auto elsewhere = [&node](const auto& h) { return h && h.node() != node; };
  if (elsewhere(info.directory) || elsewhere(info.controller)
      || std::any_of(info.shards.begin(), info.shards.end(), elsewhere))
    return "its actors live on more than one node";
  auto names = names_of(node);
  if (std::find(names.begin(), names.end(), info.name) != names.end())
    return {};
  std::string shown;
  for (auto& n : names)
    shown += (shown.empty() ? "" : ", ") + n;
  return "its certificate names " + (shown.empty() ? std::string{"no member"} : shown);
}

/// Whether `info` counts (see `refusal`); logs a refusal once per claimed name and
/// reason (a refused peer says hello again and again).
std::string refuse(supervisor_ptr self, const peer_info& info) {
  auto why = refusal(self, info);
  if (why.empty())
    return why;
  auto& refused = self->state.refused;
  if (refused.size() >= 1024 && refused.count(info.name) == 0)
    refused.clear(); // bounded: a peer may claim any number of names
  auto& last = refused[info.name];
  if (last != why)
    note(self, "refuse", "a hello claiming " + info.name + " was refused: " + why);
  last = why;
  return why;
}

/// Records a peer from its hello; returns whether anything changed.
bool add_peer(supervisor_ptr self, const peer_info& info) {
  auto& st = self->state;
  if (info.name == st.self_info.name || !info.supervisor)
    return false;
  if (!refusal(self, info).empty())
    return false;
  auto i = st.peers.find(info.name);
  if (i != st.peers.end()) {
    if (i->second.info.incarnation > info.incarnation)
      return false; // a hello of an older process
    if (i->second.info.supervisor == info.supervisor) {
      i->second.last_heard = now_ms();
      return false;
    }
  }
  st.lost.erase(info.name);
  note(self, "connect",
       info.name + " connected (incarnation " + std::to_string(info.incarnation) + ")");
  auto& e = st.peers[info.name];
  e.info = info;
  e.last_heard = now_ms();
  self->monitor(info.supervisor);
  if (!info.cluster.empty())
    st.addresses.insert(info.cluster);
  return true;
}

/// Whether the message being handled comes from `p`'s supervisor; with
/// node-to-node TLS a heartbeat counts only then (else any member could keep a
/// dead one alive). Always true without TLS.
bool from_peer(supervisor_ptr self, const peer_entry& p) {
  if (!self->state.cfg.certificate_names)
    return true;
  return caf::actor_cast<caf::actor>(self->current_sender()) == p.info.supervisor;
}

/// Splits HOST:PORT; false for anything else (an address a peer announced before
/// it knew its own, for instance, is empty).
bool split_address(const std::string& address, std::string& host, uint16_t& port) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= address.size()
      || address.size() - colon - 1 > 5)
    return false;
  uint32_t p = 0;
  for (auto i = colon + 1; i < address.size(); ++i) {
    if (address[i] < '0' || address[i] > '9')
      return false;
    p = p * 10 + static_cast<uint32_t>(address[i] - '0');
  }
  if (p == 0 || p > 65535)
    return false;
  host = address.substr(0, colon);
  port = static_cast<uint16_t>(p);
  return true;
}

void connect(supervisor_ptr self, const std::string& address) {
  auto& st = self->state;
  std::string host;
  uint16_t port = 0;
  if (!split_address(address, host, port))
    return;
  st.connecting.insert(address);
  auto mm = st.cfg.connector ? st.cfg.connector : self->system().middleman().actor_handle();
  auto timeout = milliseconds(st.cfg.request_timeout_ms);
  self->request(mm, timeout, caf::connect_atom::value, host, port)
    .then(
      [self, address, timeout](const caf::node_id&, caf::strong_actor_ptr& ptr,
                               const std::set<std::string>&) {
        auto peer = caf::actor_cast<supervisor_actor>(ptr);
        if (!peer) {
          self->state.connecting.erase(address);
          return;
        }
        self->request(peer, timeout, hello_atom::value, self->state.self_info)
          .then(
            [self, address](peer_info& theirs, std::vector<std::string>& known) {
              auto& st = self->state;
              st.connecting.erase(address);
              if (!refuse(self, theirs).empty())
                return; // and learn no addresses from it
              for (auto& a : known)
                if (!a.empty())
                  st.addresses.insert(a);
              if (add_peer(self, theirs))
                publish(self);
            },
            [self, address](caf::error&) {
              self->state.connecting.erase(address);
            });
      },
      [self, address](caf::error&) { self->state.connecting.erase(address); });
}

/// The controllers of every reachable directory member, own first.
std::vector<directory::controller_actor> controllers_of(supervisor_ptr self) {
  auto& st = self->state;
  std::vector<directory::controller_actor> out;
  if (st.self_info.controller)
    out.push_back(st.self_info.controller);
  for (auto& [_, p] : st.peers)
    if (p.info.controller)
      out.push_back(p.info.controller);
  return out;
}

/// Asks a directory member's controller to add or refresh this node.
void join(supervisor_ptr self) {
  auto& st = self->state;
  auto controllers = controllers_of(self);
  if (controllers.empty())
    return;
  auto target = controllers[st.join_rr++ % controllers.size()];
  member m{st.self_info.name, st.self_info.gateway, true, false,
           st.self_info.incarnation};
  st.joining = true;
  self->request(target, milliseconds(st.cfg.request_timeout_ms),
                directory::join_atom::value, m)
    .then([self](uint64_t) { self->state.joining = false; },
          [self](caf::error&) {
            // Not the leader, or the cluster is still forming: ask the next one.
            self->state.joining = false;
          });
}

/// Sends `msg` to the controllers in turn until one that leads answers; refusals
/// of followers are skipped, any other answer is final.
template <class T>
void ask_leader(supervisor_ptr self, std::vector<directory::controller_actor> controllers,
                size_t i,
                caf::message msg, milliseconds timeout,
                caf::typed_response_promise<T> rp, std::string last_error) {
  if (i >= controllers.size()) {
    rp.deliver(make_error(errc::unavailable,
                          last_error.empty() ? "no directory member is reachable"
                                             : last_error));
    return;
  }
  self->request(caf::actor_cast<caf::actor>(controllers[i]), timeout, msg)
    .then(
      [rp](T& x) mutable { rp.deliver(std::move(x)); },
      [self, controllers, i, msg, timeout, rp](caf::error& err) mutable {
        auto text = message_of(err);
        if (code_of(err) == errc::unavailable
            && text.find("not the leader") != std::string::npos)
          ask_leader(self, std::move(controllers), i + 1, std::move(msg), timeout,
                     rp, text);
        else
          rp.deliver(std::move(err));
      });
}

template <class T>
caf::typed_response_promise<T> to_leader(supervisor_ptr self, caf::message msg,
                                         milliseconds timeout) {
  auto rp = self->make_response_promise<T>();
  ask_leader<T>(self, controllers_of(self), 0, std::move(msg), timeout, rp, {});
  return rp;
}

void tick(supervisor_ptr self) {
  auto& st = self->state;
  auto now = now_ms();
  uint64_t series = 0;
  uint64_t applied = 0;
  uint64_t windows = 0;
  if (st.cfg.counters) {
    series = st.cfg.counters->series.load(std::memory_order_relaxed);
    applied = st.cfg.counters->samples_applied.load(std::memory_order_relaxed);
    windows = st.cfg.counters->windows_closed.load(std::memory_order_relaxed);
  }
  for (auto& [_, p] : st.peers)
    self->send(caf::actor_cast<supervisor_actor>(p.info.supervisor),
               heartbeat_atom::value, st.self_info.name, st.self_info.incarnation,
               series, applied, windows);
  // Suspicions go to every directory member's controller with every heartbeat, so
  // a new leader has them at once; one empty report withdraws them.
  std::vector<std::string> suspects;
  for (auto& [name, p] : st.peers)
    if (now - p.last_heard > static_cast<int64_t>(st.cfg.suspect_ms)) {
      suspects.push_back(name);
      if (!p.suspected)
        note(self, "suspect",
             name + " silent for " + std::to_string(now - p.last_heard) + " ms");
      p.suspected = true;
    }
  for (auto& [name, _] : st.lost)
    suspects.push_back(name);
  if (!suspects.empty() || st.suspecting) {
    st.suspecting = !suspects.empty();
    for (auto& c : controllers_of(self))
      self->send(c, directory::suspect_atom::value, st.self_info.name, suspects);
  }
  if (now >= st.next_connect) {
    st.next_connect = now + std::max<int64_t>(4 * st.cfg.heartbeat_ms, 200);
    for (auto& a : st.addresses)
      if (!st.connected_to(a) && st.connecting.count(a) == 0)
        connect(self, a);
  }
  // Once a second: the load of the slices this node leads, for placement.
  if (st.cfg.counters && st.cfg.counters->slice_count > 0 && now - st.loads_at >= 1000
      && !st.table.slices.empty()) {
    auto& c = *st.cfg.counters;
    auto dt = st.loads_at == 0 ? 0.0 : static_cast<double>(now - st.loads_at) / 1000.0;
    st.applied_then.resize(c.slice_count, 0);
    int32_t me = -1;
    for (size_t i = 0; i < st.table.members.size(); ++i)
      if (st.table.members[i].name == st.self_info.name)
        me = static_cast<int32_t>(i);
    std::vector<directory::slice_load_report> reports;
    for (uint32_t s = 0; s < c.slice_count && s < st.table.slices.size(); ++s) {
      auto applied = c.slice_applied[s].load(std::memory_order_relaxed);
      auto delta = applied - st.applied_then[s];
      st.applied_then[s] = applied;
      if (me < 0 || st.table.slices[s].primary != me)
        continue;
      directory::slice_load_report r;
      r.slice = s;
      r.series = c.slice_series[s].load(std::memory_order_relaxed);
      r.samples_per_second = dt > 0 ? static_cast<double>(delta) / dt : 0.0;
      auto unserved = c.slice_unserved[s].load(std::memory_order_relaxed);
      if (unserved == st.table.slices[s].epoch)
        r.unserved_epoch = unserved;
      reports.push_back(r);
    }
    st.loads_at = now;
    if (!reports.empty())
      for (auto& ctl : controllers_of(self))
        self->send(ctl, directory::load_atom::value, st.self_info.name, reports);
  }
  if (!st.joined && !st.joining && now >= st.next_join) {
    st.next_join = now + 300;
    join(self);
  }
  self->delayed_send(self, milliseconds(st.cfg.heartbeat_ms), sup_tick_atom::value);
}

/// Asks this node's shards where their replicas of `slices` stand (fencing each at
/// `fences[i]` if given, for the election of table `version`); a shard that does not
/// answer reports nothing.
caf::typed_response_promise<std::vector<series::replica_position>>
positions_of(supervisor_ptr self, std::vector<uint32_t> slices,
             std::vector<uint64_t> fences, uint64_t version) {
  using positions = std::vector<series::replica_position>;
  auto rp = self->make_response_promise<positions>();
  auto& shards = self->state.self_info.shards;
  if (shards.empty() || slices.empty()) {
    rp.deliver(positions{});
    return rp;
  }
  auto n = static_cast<uint32_t>(shards.size());
  std::map<uint32_t, std::pair<std::vector<uint32_t>, std::vector<uint64_t>>> by_shard;
  for (size_t i = 0; i < slices.size(); ++i) {
    auto& [xs, es] = by_shard[series::shard_of(slices[i], n)];
    xs.push_back(slices[i]);
    es.push_back(i < fences.size() ? fences[i] : 0);
  }
  struct fan {
    size_t remaining;
    positions out;
  };
  auto f = std::make_shared<fan>(fan{by_shard.size(), {}});
  auto timeout = milliseconds(self->state.cfg.request_timeout_ms);
  for (auto& [i, q] : by_shard) {
    auto on_answer = [f, rp](positions& ps) mutable {
      for (auto& p : ps)
        f->out.push_back(p);
      if (--f->remaining == 0)
        rp.deliver(std::move(f->out));
    };
    auto on_error = [f, rp](caf::error&) mutable {
      if (--f->remaining == 0)
        rp.deliver(std::move(f->out));
    };
    if (fences.empty())
      self->request(shards[i], timeout, series::position_atom::value, std::move(q.first))
        .then(on_answer, on_error);
    else
      self
        ->request(shards[i], timeout, series::position_atom::value, std::move(q.first),
                  std::move(q.second), version)
        .then(on_answer, on_error);
  }
  return rp;
}

/// A new directory table: its changes are logged, and whether this process is in
/// it (joined) is read from it.
void on_table(supervisor_ptr self, const assignment_table& t) {
  auto& st = self->state;
  if (t.version > st.table.version) {
    for (auto& [kind, text] : events::table_changes(st.table, t))
      note(self, std::move(kind), std::move(text));
    st.table = t;
  }
  auto idx = -1;
  for (size_t i = 0; i < t.members.size(); ++i)
    if (t.members[i].name == st.self_info.name)
      idx = static_cast<int>(i);
  // A drained member stays out until it restarts; a member declared failed
  // while it lives (a partition, a pause) asks to be taken back, and so does a
  // process that restarted before its predecessor was declared failed (the
  // table names another incarnation).
  if (idx >= 0 && t.members[idx].address == st.self_info.gateway) {
    auto& m = t.members[idx];
    st.joined = (m.up && (m.incarnation == 0
                          || m.incarnation == st.self_info.incarnation))
                || m.drained;
  }
}

/// This node and every connected peer as `/v1/nodes` shows them.
std::vector<peer_status> peer_statuses(supervisor_ptr self) {
  auto& st = self->state;
  std::vector<peer_status> out;
  auto now = now_ms();
  peer_status me;
  me.name = st.self_info.name;
  me.gateway = st.self_info.gateway;
  me.cluster = st.self_info.cluster;
  me.incarnation = st.self_info.incarnation;
  me.directory_id = st.self_info.directory_id;
  me.self = true;
  me.connected = true;
  me.last_heard_ms = 0;
  if (st.cfg.counters) {
    me.series = st.cfg.counters->series.load(std::memory_order_relaxed);
    me.samples_applied = st.cfg.counters->samples_applied.load(
      std::memory_order_relaxed);
    me.windows_closed = st.cfg.counters->windows_closed.load(
      std::memory_order_relaxed);
  }
  out.push_back(me);
  for (auto& [name, p] : st.peers) {
    peer_status s;
    s.name = name;
    s.gateway = p.info.gateway;
    s.cluster = p.info.cluster;
    s.incarnation = p.info.incarnation;
    s.directory_id = p.info.directory_id;
    s.connected = true;
    s.last_heard_ms = now - p.last_heard;
    s.suspect = s.last_heard_ms > static_cast<int64_t>(st.cfg.suspect_ms);
    s.series = p.series;
    s.samples_applied = p.samples_applied;
    s.windows_closed = p.windows_closed;
    out.push_back(s);
  }
  return out;
}

/// The directory asks this node to hand `slice` to `dest` at `epoch`: the shard
/// that holds it exports it to the shard of the same index on `dest`.
caf::result<uint64_t> hand_off(supervisor_ptr self, uint32_t slice, uint64_t epoch,
                               const std::string& dest) {
  auto& st = self->state;
  auto& mine = st.self_info.shards;
  const std::vector<series::shard_actor>* theirs = nullptr;
  if (dest == st.self_info.name) {
    theirs = &mine;
  } else if (auto i = st.peers.find(dest); i != st.peers.end()) {
    theirs = &i->second.info.shards;
  }
  if (theirs == nullptr || theirs->empty() || mine.empty())
    return make_error(errc::unavailable, "no connection to " + dest);
  auto from = mine[series::shard_of(slice, static_cast<uint32_t>(mine.size()))];
  auto to = (*theirs)[series::shard_of(slice,
                                       static_cast<uint32_t>(theirs->size()))];
  auto rp = self->make_response_promise<uint64_t>();
  self
    ->request(caf::actor_cast<series::shard_handoff_actor>(from),
              milliseconds(2 * st.cfg.request_timeout_ms),
              series::export_atom::value, slice, epoch,
              caf::actor_cast<series::shard_import_actor>(to))
    .then([rp](uint64_t n) mutable { rp.deliver(n); },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

supervisor_actor::behavior_type supervisor_behavior(supervisor_ptr self,
                                                    supervisor_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.self_info.name = st.cfg.name;
  st.self_info.gateway = st.cfg.gateway;
  st.self_info.incarnation = st.cfg.incarnation != 0
                               ? st.cfg.incarnation
                               : supervision::new_incarnation();
  st.self_info.supervisor = caf::actor_cast<caf::actor>(self);
  st.self_info.shards = st.cfg.shards;
  st.self_info.directory_id = st.cfg.directory_id;
  st.self_info.directory = st.cfg.directory;
  st.self_info.controller = st.cfg.controller;
  for (auto& s : st.cfg.seeds)
    st.addresses.insert(s);
  // An error that arrives as a message (another node's actor answering an
  // asynchronous send with one, say) must not stop this actor: CAF's default
  // handler would quit it.
  self->set_error_handler([](caf::error&) {});
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& peers = self->state.peers;
    for (auto i = peers.begin(); i != peers.end(); ++i)
      if (i->second.info.supervisor.address() == msg.source) {
        note(self, "lost", i->first + ": connection lost");
        self->state.lost[i->first] = now_ms();
        peers.erase(i);
        publish(self);
        return;
      }
  });
  // Moves take a while: an operator request may wait for a whole drain.
  auto long_timeout = milliseconds(std::max<uint32_t>(st.cfg.request_timeout_ms, 60000));
  return {
    [self](series::position_atom, std::vector<uint32_t>& slices) {
      return positions_of(self, std::move(slices), {}, 0);
    },
    [self](series::position_atom, std::vector<uint32_t>& slices,
           std::vector<uint64_t>& fences, uint64_t version) {
      if (!slices.empty())
        note(self, "fence",
             "an election fenced this node's replicas of "
               + std::to_string(slices.size()) + " slices");
      return positions_of(self, std::move(slices), std::move(fences), version);
    },
    [self, long_timeout](directory::drain_atom, std::string& name) {
      return to_leader<uint64_t>(self,
                                 caf::make_message(directory::drain_atom::value, name),
                                 long_timeout);
    },
    [self, long_timeout](directory::move_atom, uint32_t slice, std::string& name) {
      return to_leader<uint64_t>(
        self, caf::make_message(directory::move_atom::value, slice, name),
        long_timeout);
    },
    [self, long_timeout](directory::rebalance_atom) {
      return to_leader<uint64_t>(
        self, caf::make_message(directory::rebalance_atom::value), long_timeout);
    },
    [self](directory::report_atom) {
      return to_leader<directory::controller_report>(
        self, caf::make_message(directory::report_atom::value),
        milliseconds(self->state.cfg.request_timeout_ms));
    },
    [self](start_atom, std::string& address) {
      auto& st = self->state;
      if (st.started)
        return;
      st.started = true;
      st.self_info.cluster = address;
      st.addresses.erase(address);
      publish(self);
      self->request(st.cfg.client, milliseconds(st.cfg.request_timeout_ms),
                    subscribe_atom::value, caf::actor_cast<caf::actor>(self))
        .then([self](assignment_table& t) {
          caf::anon_send(self, update_atom::value, std::move(t));
        });
      tick(self);
    },
    [self](hello_atom,
           peer_info& theirs) -> caf::result<peer_info, std::vector<std::string>> {
      auto& st = self->state;
      if (auto why = refuse(self, theirs); !why.empty())
        return make_error(errc::permission_denied,
                          "a hello claiming " + theirs.name + " was refused: " + why);
      std::vector<std::string> known(st.addresses.begin(), st.addresses.end());
      if (!st.self_info.cluster.empty())
        known.push_back(st.self_info.cluster);
      if (add_peer(self, theirs))
        publish(self);
      return {st.self_info, std::move(known)};
    },
    [self](heartbeat_atom, std::string& name, uint64_t incarnation, uint64_t series,
           uint64_t applied, uint64_t windows) {
      auto i = self->state.peers.find(name);
      if (i != self->state.peers.end() && i->second.info.incarnation == incarnation
          && from_peer(self, i->second)) {
        i->second.last_heard = now_ms();
        i->second.series = series;
        i->second.samples_applied = applied;
        i->second.windows_closed = windows;
        i->second.suspected = false;
      }
    },
    [self](sup_tick_atom) { tick(self); },
    [self](update_atom, assignment_table& t) { on_table(self, t); },
    [self](read_atom) { return peer_statuses(self); },
    [self](directory::handoff_atom, uint32_t slice, uint64_t epoch,
           std::string& dest) -> caf::result<uint64_t> {
      return hand_off(self, slice, epoch, dest);
    },
  };
}

} // namespace

uint64_t new_incarnation() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count());
}

supervisor_actor spawn_supervisor(caf::actor_system& sys, supervisor_config cfg) {
  return sys.spawn(supervisor_behavior, std::move(cfg));
}

void add_supervision_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<peer_info>("tether.peer_info");
  cfg.add_message_type<peer_status>("tether.peer_status");
  cfg.add_message_type<std::vector<peer_status>>("std::vector<tether.peer_status>");
  cfg.add_message_type<supervisor_actor>("tether.supervisor_actor");
  cfg.add_message_type<std::vector<series::shard_actor>>(
    "std::vector<tether.shard_actor>");
}

} // namespace tether::supervision
