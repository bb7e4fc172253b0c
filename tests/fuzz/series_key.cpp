// libFuzzer harness: series key text such as `http_requests_total{code="200"}`, as
// tetherd parses the keys of queries, subscriptions and `/v1/where` and `/v1/series`
// (`keys::canonicalise` with the node's default limits).

#include <string>

#include "frame_target.hpp"
#include "keys/series_key.hpp"
#include "keys/slicing.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tether::fuzz::silence_libraries();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tether;
  auto& lim = fuzz::defaults().limits;
  std::string_view text{reinterpret_cast<const char*>(data), size};
  std::string key;
  std::string error;
  auto code = keys::canonicalise(text, lim.max_labels_per_sample, lim.max_key_bytes,
                                 key, error);
  if (code != errc::none) {
    fuzz::require(!error.empty(), "a refused key says why");
    fuzz::require(keys::valid_utf8(error), "key errors are valid UTF-8", error);
    return 0;
  }
  fuzz::require(key.size() <= lim.max_key_bytes, "keys respect max_key_bytes", key);
  fuzz::check_canonical(key);
  fuzz::require(keys::slice_of(keys::key_hash(key), fuzz::defaults().slice_count)
                  < fuzz::defaults().slice_count,
                "the slice exists");
  return 0;
}
