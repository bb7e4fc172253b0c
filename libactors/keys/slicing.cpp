#include "keys/slicing.hpp"

#include <xxhash.h>

namespace tether::keys {

uint64_t key_hash(std::string_view canonical_key) noexcept {
  return XXH3_64bits(canonical_key.data(), canonical_key.size());
}

} // namespace tether::keys
