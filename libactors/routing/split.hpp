#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "routing/route_table.hpp"
#include "shard/messages.hpp"
#include "wire/keyed_batch.hpp"

namespace tether::routing {

/// One shard write per destination shard.
struct routed_write {
  series::shard_actor shard;
  series::shard_write write;
};

/// Splits a keyed batch by slice and groups the slices by the shard that serves them:
/// one message per shard per batch. Slices without a reachable primary are reported in
/// `unroutable`. Linear in the batch size plus the slice count; allocates per shard,
/// not per sample.
class splitter {
public:
  void split(const wire::keyed_batch& batch, const route_table& table,
             std::vector<routed_write>& out, std::vector<uint32_t>& unroutable);

private:
  std::vector<uint32_t> counts_; ///< per slice, then prefix offsets
  std::vector<uint32_t> order_;  ///< sample indices sorted by slice
};

} // namespace tether::routing
