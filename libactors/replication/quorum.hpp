#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace tether::replication {

/// The write quorum of a replica set of `replicas` members when the configured
/// replication factor is `rf`: a majority of the larger of the two. A primary
/// acknowledges a write once that many replicas (itself included) applied it; an
/// election (directory/election) is safe once more than `replicas - quorum` of them
/// answered, since then one of them applied every acknowledged write. The one
/// definition of both.
constexpr size_t write_quorum(size_t replicas, uint32_t rf) noexcept {
  return std::max(replicas, static_cast<size_t>(rf)) / 2 + 1;
}

} // namespace tether::replication
