// libFuzzer harness: a rules file (docs/aggregation.md) as a node parses it at start
// and on reload (`rules::rule_set::parse` with the node's defaults); a set that parses
// is then matched against a few series as the keyer does.

#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "keys/series_key.hpp"

namespace {

using namespace tether;

struct probe {
  std::string_view name;
  std::vector<keys::label_ref> labels; ///< normalised: sorted by name
};

const std::vector<probe>& probes() {
  static const std::vector<probe> xs{
    {"http_requests_total", {{"code", "200"}, {"env", "prod"}, {"pod", "a-1"}}},
    {"api_latency_seconds", {{"route", "/v1"}}},
    {"room_temp_celsius", {{"room", "lab"}}},
    {"up", {}},
  };
  return xs;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::silence_libraries();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string error;
  auto set = rules::rule_set::parse({reinterpret_cast<const char*>(data), size},
                                    fuzz::rule_defaults_of_node(), error);
  if (!set) {
    fuzz::require(!error.empty(), "a refused rules file says why");
    return 0;
  }
  fuzz::require(error.empty(), "an accepted rules file has no error", error);
  for (auto& p : probes()) {
    const auto* r = set->match(p.name, p.labels.data(), p.labels.size());
    if (r == nullptr)
      continue;
    fuzz::require(r->index < set->rules().size() && &set->rules()[r->index] == r,
                  "a match is one of the set's rules");
    std::vector<keys::label_ref> kept(p.labels.size());
    auto n = rules::output_labels(*r, p.labels.data(), p.labels.size(), kept.data());
    fuzz::require(n <= p.labels.size(), "a rule keeps at most every label");
  }
  return 0;
}
