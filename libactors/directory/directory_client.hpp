#pragma once

#include <cstdint>
#include <vector>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "directory/replicated_directory.hpp"
#include "tether/actors.hpp"

namespace tether::directory {

/// Names the directory members a client may read from, best first.
using via_atom = caf::atom_constant<caf::atom("tt_via")>;

/// A node's local view of the replicated directory: serves `directory_actor` to the
/// node's router and shards from the newest table it received, and keeps one
/// subscription to a directory member (the local one on a directory node, else the
/// first reachable one). When its member goes away it subscribes to the next; the
/// tables of all members come from one Raft log, so it passes on only versions newer
/// than the last it passed on. Before the first table it serves an empty one
/// (version 0).
using directory_client_actor = directory_actor::extend<
  caf::reacts_to<update_atom, assignment_table>,
  caf::reacts_to<via_atom, std::vector<replicated_directory_actor>>>;

/// Spawns a client. Send it `(via_atom, members)` whenever the reachable members
/// change.
directory_client_actor spawn_directory_client(caf::actor_system& sys,
                                              uint32_t request_timeout_ms);

} // namespace tether::directory
