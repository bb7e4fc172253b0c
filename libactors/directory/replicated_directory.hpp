#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "directory/raft/types.hpp"
#include "events/event_log.hpp"
#include "tether/actors.hpp"

/// The directory as a Raft-replicated state machine of CAF actors.
///
/// Each *member* is one actor owning a `raft::raft_node` (member ids 1..N), a tick
/// timer and the handles of its peers. The committed log applies commands to an
/// `assignment_table`; every member serves the `directory_actor` interface from its
/// own applied table and pushes `(update_atom, assignment_table)` to its subscribers
/// whenever it applies a change.
///
/// Consistency. Writes (`propose_atom`) are answered by the leader only, once the
/// command is committed and applied on the leader; a follower or candidate refuses
/// with `errc::unavailable` naming the leader it knows. Reads are served by any
/// member from its applied table: on a follower they may lag the leader (stale by
/// the replication delay), but a member never serves a table older than one it has
/// served before, and every member applies the same tables in the same order.
///
/// Durability. With `replicated_directory_config::data_dir` set, a member keeps its
/// Raft state (term, vote, log, snapshot of the table) in that directory through a
/// `raft::file_storage` and loads it at spawn: a member killed and spawned again
/// with the same id and directory never votes twice in a term and never forgets an
/// entry it acknowledged, and serves the table of its snapshot from the start; the
/// committed entries after the snapshot are applied again once it learns the commit
/// index from the leader (a single member commits its own log when it elects
/// itself). Each write is fsynced before the message that depends on it is sent (see
/// `raft::raft_node` and `raft::file_storage`). A member whose directory cannot be
/// loaded (damaged, or in use by another member) or whose write fails stops with
/// `errc::internal`, the reason in its exit message. Without a `data_dir` the state
/// lives in memory: a restarted member starts empty and, in a group of three, a
/// restart can lose committed entries.
///
/// Thread safety: the actors are the only owners of their state; handles may be used
/// from any thread.
namespace tether::directory {

/// Asks the leader to replace the table (answered with the applied version).
using propose_atom = caf::atom_constant<caf::atom("tt_propose")>;
/// Replaces the table only if it is still the one the proposer read:
/// `(cas_atom, table)` applies iff `table.version == current.version + 1`.
using cas_atom = caf::atom_constant<caf::atom("tt_cas")>;
/// Sets the peers of a member (index i holds member i + 1; its own slot is ignored).
using peers_atom = caf::atom_constant<caf::atom("tt_peers")>;
/// Carries one Raft protocol message between members: (raft_atom, from, payload).
using raft_atom = caf::atom_constant<caf::atom("tt_raft")>;
/// Asks a member for its Raft status.
using status_atom = caf::atom_constant<caf::atom("tt_status")>;
/// A member's own timer.
using raft_tick_atom = caf::atom_constant<caf::atom("tt_rtick")>;

/// The replicated directory member: `directory_actor` plus writes, wiring and status.
///
/// - `(propose_atom, table)` -> version: replaces the table. The applied version is
///   `max(table.version, current.version + 1)`, so versions strictly grow; the reply
///   comes once the command is applied on the leader. Followers refuse with
///   `errc::unavailable` ("... leader is member N"); a leader that loses its
///   leadership before the command commits answers `errc::unavailable` too (the
///   command may still commit: replacing a table is idempotent, so retry).
/// - `(cas_atom, table)` -> version: a conditional replacement for read-modify-write
///   cycles: applied (at `table.version`) only if the table is still at
///   `table.version - 1` when the command applies, else answered `errc::unavailable`
///   ("... changed since it was read"), and nothing changes.
/// - `(peers_atom, handles)`: the other members, index i = member i + 1.
/// - `(status_atom)` -> (self id, leader id or 0, term, applied index).
/// - `(raft_atom, from, payload)`: the Raft protocol, one payload struct per message.
using replicated_directory_actor = directory_actor::extend<
  caf::replies_to<propose_atom, assignment_table>::with<uint64_t>,
  caf::replies_to<cas_atom, assignment_table>::with<uint64_t>,
  caf::reacts_to<peers_atom, std::vector<caf::actor>>,
  caf::replies_to<status_atom>::with<uint32_t, uint32_t, uint64_t, uint64_t>,
  caf::reacts_to<raft_tick_atom>,
  caf::reacts_to<raft_atom, uint32_t, raft::vote_request>,
  caf::reacts_to<raft_atom, uint32_t, raft::vote_reply>,
  caf::reacts_to<raft_atom, uint32_t, raft::append_entries>,
  caf::reacts_to<raft_atom, uint32_t, raft::append_reply>,
  caf::reacts_to<raft_atom, uint32_t, raft::install_snapshot>,
  caf::reacts_to<raft_atom, uint32_t, raft::snapshot_reply>>;

/// Options of one member. Defaults suit a LAN group of 1 or 3 members.
struct replicated_directory_config {
  /// This member's id, 1..group_size.
  uint32_t self = 1;
  /// Members of the group (1, 3 or 5); ids are 1..group_size.
  uint32_t group_size = 1;
  /// Optional names of the members (index i = member i + 1), used in errors.
  std::vector<std::string> member_names;
  /// Length of one Raft tick in ms (default 20). Bounds: >= 1.
  uint32_t tick_ms = 20;
  /// Raft timing in ticks: election timeout in [N, 2N), heartbeat interval.
  raft::raft_config raft;
  /// Seeds the election timer's PRNG (mixed with `self`).
  uint64_t seed = 1;
  /// Compact the log after this many applied entries (default 64; 0: never).
  uint64_t snapshot_every = 64;
  /// A proposal waiting this long for its commit is answered `unavailable`
  /// (default 5000 ms).
  uint32_t propose_timeout_ms = 5000;
  /// Where leader changes this member sees are recorded (optional).
  std::shared_ptr<events::event_log> events;
  /// When set (version > 0), the first leader that finds the table empty proposes
  /// it; it applies only to an empty table, so several bootstraps are harmless.
  assignment_table bootstrap;
  /// With node-to-node TLS (where an actor's node says which member it belongs
  /// to): a Raft message counts only from the handle this member's peers list has
  /// for the id it claims, and the peers list only from this node. Without, ids
  /// are taken on trust.
  bool bind_members = false;
  /// Directory of this member's durable Raft state, created if missing; one
  /// directory per member, never shared (a second member on it stops with
  /// `errc::internal`). Empty (default): in memory only.
  std::string data_dir;
};

/// Spawns one directory member. Send it `(peers_atom, handles)` once every member
/// of a group of more than one exists; a single member needs no peers. With a
/// `data_dir`, the member loads its state before it serves its first request; if
/// that fails it exits at once with `errc::internal` (monitor it to see why).
replicated_directory_actor
spawn_replicated_directory(caf::actor_system& sys, replicated_directory_config cfg);

/// Spawns a whole group of `group_size` members in this actor system, wires their
/// peers and returns them (index i = member i + 1). Every member gets `cfg` with its
/// own `self`; with a `data_dir`, member i keeps its state in `<data_dir>/member-i`.
std::vector<replicated_directory_actor>
spawn_replicated_directory_group(caf::actor_system& sys,
                                 replicated_directory_config cfg);

/// A state machine command, as stored in Raft log entries.
enum class command_kind : uint8_t {
  propose_table = 1, ///< replace the table (version: see `propose_atom`)
  bootstrap = 2,     ///< replace the table only if it is empty (version 0)
  replace_if = 3,    ///< replace the table only if `version` is the current + 1
};

/// Encodes a command: one kind byte followed by the table in CAF's binary format.
std::string encode_command(caf::actor_system& sys, command_kind kind,
                           const assignment_table& table);

/// Decodes a command; false on malformed input.
bool decode_command(caf::actor_system& sys, const std::string& bytes,
                    command_kind& kind, assignment_table& table);

/// Encodes a table for a snapshot (CAF's binary format).
std::string encode_table(caf::actor_system& sys, const assignment_table& table);

/// Decodes a snapshot's table; false on malformed input.
bool decode_table(caf::actor_system& sys, const std::string& bytes,
                  assignment_table& table);

/// Registers the message types of the replicated directory (call from `configure`).
void add_replicated_directory_types(caf::actor_system_config& cfg);

} // namespace tether::directory
