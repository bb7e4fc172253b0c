#include "shard/message_types.hpp"

#include <caf/actor_system_config.hpp>

#include "shard/shard.hpp"
#include "series/slice_snapshot.hpp"

namespace tether::series {

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<slice_snapshot>("tether.slice_snapshot");
  cfg.add_message_type<shard_import_actor>("tether.shard_import_actor");
  cfg.add_message_type<shard_handoff_actor>("tether.shard_handoff_actor");
  // Replication between the shards of different nodes.
  cfg.add_message_type<shard_replica_actor>("tether.shard_replica_actor");
  cfg.add_message_type<replica_batch>("tether.replica_batch");
  cfg.add_message_type<replica_item>("tether.replica_item");
  cfg.add_message_type<commit_note>("tether.commit_note");
  cfg.add_message_type<replica_ack>("tether.replica_ack");
  cfg.add_message_type<replica_acks>("tether.replica_acks");
  cfg.add_message_type<window_ref>("tether.window_ref");
  cfg.add_message_type<window_mark>("tether.window_mark");
  cfg.add_message_type<stream_position>("tether.stream_position");
  // The directory's election asks shards where their replicas stand.
  cfg.add_message_type<replica_position>("tether.replica_position");
  cfg.add_message_type<std::vector<uint32_t>>("std::vector<uint32_t>");
  cfg.add_message_type<std::vector<uint64_t>>("std::vector<uint64_t>");
  cfg.add_message_type<node_shards>("tether.node_shards");
}

} // namespace tether::series
