#pragma once

// Tether's embedding API. Two calls bring Tether into a CAF application:
//   tether::configure(cfg);                  // message types, error codes, tether.* options
//   auto n = tether::spawn_node(sys, opts);  // directory, router and shards of one node
// then `n.open_producer("id")` gives a typed `ingest_actor` to write and read series.

#include "tether/actors.hpp"
#include "tether/assignment.hpp"
#include "tether/errc.hpp"
#include "tether/node.hpp"
#include "tether/options.hpp"
#include "tether/types.hpp"

namespace caf {
class actor_system;
class actor_system_config;
class error;
} // namespace caf

namespace tether {

/// Adds Tether's message types, its error category and its `tether.*` options to
/// `cfg`. Call once, before the config parses the command line or config file.
void configure(caf::actor_system_config& cfg);

/// Spawns one node into `sys`. `sys` must come from a config passed to `configure`.
/// Throws std::invalid_argument when `check(opts)` finds an option out of bounds.
node spawn_node(caf::actor_system& sys, const node_options& opts);

/// Builds the error Tether's actors return, e.g. `make_error(errc::kind_conflict, msg)`.
caf::error make_error(errc code, std::string message);

/// Extracts the code of an error raised by Tether; `errc::unavailable` for a request
/// that timed out or whose receiver went away (the outcome is open: retry), and
/// `errc::internal` for other foreign errors.
errc code_of(const caf::error& err);

/// Extracts the message of an error raised by Tether.
std::string message_of(const caf::error& err);

/// Whether a failed request's outcome is open: it was not refused by Tether but
/// timed out, or its receiver or the connection to it went away, so it may or may
/// not have been carried out.
bool outcome_unknown(const caf::error& err);

} // namespace tether
