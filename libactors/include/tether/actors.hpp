#pragma once

// Typed interfaces of the actors an embedding application talks to.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "tether/assignment.hpp"
#include "tether/types.hpp"

namespace tether {

using write_atom = caf::atom_constant<caf::atom("tt_write")>;
using read_atom = caf::atom_constant<caf::atom("tt_read")>;
using subscribe_atom = caf::atom_constant<caf::atom("tt_sub")>;
using window_atom = caf::atom_constant<caf::atom("tt_window")>;
using update_atom = caf::atom_constant<caf::atom("tt_update")>;

/// A producer's entry point into a node. Writes are batches with a strictly increasing
/// sequence; a retried sequence is acknowledged as a duplicate and not applied again.
/// Subscribers receive `(window_atom, std::vector<series_view>)` when windows of the
/// keys they asked for close; each view's `window` is the window that closed.
using ingest_actor = caf::typed_actor<
  caf::replies_to<write_atom, uint64_t, std::vector<sample>>::with<write_ack>,
  caf::replies_to<read_atom, std::string>::with<series_view>,
  caf::replies_to<subscribe_atom, std::vector<std::string>, caf::actor>::with<
    std::vector<series_view>>>;

/// The sticky directory: slice -> replica set + epoch. Subscribers receive
/// `(update_atom, assignment_table)` whenever the table changes.
using directory_actor = caf::typed_actor<
  caf::replies_to<read_atom>::with<assignment_table>,
  caf::replies_to<subscribe_atom, caf::actor>::with<assignment_table>>;

} // namespace tether
