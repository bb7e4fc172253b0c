#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "shard/shard.hpp"
#include "tether/assignment.hpp"

namespace tether::routing {

/// Where a slice's writes go: the primary's epoch and the shard that hosts it.
struct route {
  uint64_t epoch = 0;
  int32_t primary = -1;      ///< member index, -1 = unavailable
  series::shard_actor shard; ///< invalid when the primary is not reachable from here
};

/// An immutable snapshot of the directory as this node routes by it.
struct route_table {
  uint64_t version = 0;
  std::string local_node;
  std::vector<member> members;
  std::vector<route> slices; ///< index = slice id

  uint32_t slice_count() const noexcept {
    return static_cast<uint32_t>(slices.size());
  }

  const std::string& node_name(int32_t member) const;
};

/// The per-node cache of the directory that every ingest actor reads: one atomic
/// snapshot pointer, replaced as a whole by the router, read once per batch. No
/// lookup or lock per sample. Thread-safe.
class route_cache {
public:
  std::shared_ptr<const route_table> load() const {
    return std::atomic_load_explicit(&table_, std::memory_order_acquire);
  }

  void store(std::shared_ptr<const route_table> t) {
    std::atomic_store_explicit(&table_, std::move(t), std::memory_order_release);
  }

private:
  std::shared_ptr<const route_table> table_;
};

} // namespace tether::routing
