#pragma once

#include <functional>
#include <memory>
#include <string>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "replication/messages.hpp"
#include "requests/deadlines.hpp"
#include "routing/route_table.hpp"
#include "rules/rule_cache.hpp"
#include "tether/actors.hpp"
#include "tether/options.hpp"
#include "wire/keyed_batch.hpp"

namespace tether::routing {

/// An ingest actor's own timer: writes waiting on a primary that the routing table
/// no longer names fail now (retryable) instead of when their node's connection
/// times out.
using reroute_atom = caf::atom_constant<caf::atom("tt_rerte")>;

/// The answer to a write sent as `(write_atom, keyed_batch, write_reply)` instead of
/// a request: called once, on the ingest actor's thread, with the ack or the error.
/// It saves the gateway an actor between its I/O thread and the ingest actor (two
/// thread hand-offs per write). Local only: it cannot cross the network.
struct write_reply {
  std::function<void(caf::expected<write_ack>)> fn;
};

/// The ingest interface plus the gateway's pre-keyed write: the gateway validates and
/// keys a frame on its I/O thread and hands the keyed batch over, as a request or
/// with a `write_reply`. `sweep_atom` is
/// its own timer for the deadlines of its writes to shards (`requests::deadlines`).
/// `near_ack_atom` is the answer of a follower on this node to a write sent to a
/// primary on another node (replication/messages.hpp, `near_ack`).
using ingest_full_actor = ingest_actor::extend<
  caf::replies_to<write_atom, wire::keyed_batch>::with<write_ack>,
  caf::reacts_to<write_atom, wire::keyed_batch, write_reply>,
  caf::reacts_to<reroute_atom>, caf::reacts_to<requests::sweep_atom>,
  caf::reacts_to<replication::near_ack_atom, uint64_t, series::shard_write_result>>;

/// What every ingest actor of a node shares.
struct ingest_context {
  std::shared_ptr<route_cache> cache;
  std::shared_ptr<rules::rule_cache> rules;
  tether::limits limits;
  uint32_t slice_count = 1024;
  uint32_t request_timeout_ms = 5000;
};

/// Spawns an ingest actor for one producer: it routes each batch to the slice
/// primaries (one message per shard), waits for all of them and then acknowledges.
ingest_full_actor spawn_ingest(caf::actor_system& sys,
                               std::shared_ptr<const ingest_context> ctx,
                               std::string producer);

} // namespace tether::routing

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tether::routing::write_reply)
