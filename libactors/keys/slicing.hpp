#pragma once

#include <cstdint>
#include <string_view>

namespace tether::keys {

/// The 64-bit xxh3 hash (seed 0) of a canonical key. Stable across versions and
/// machines: placement depends on it.
uint64_t key_hash(std::string_view canonical_key) noexcept;

/// The slice a hash belongs to.
inline uint32_t slice_of(uint64_t hash, uint32_t slice_count) noexcept {
  return static_cast<uint32_t>(hash % slice_count);
}

} // namespace tether::keys
