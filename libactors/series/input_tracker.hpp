#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "rules/rule_cache.hpp"
#include "series/slice_state.hpp"

namespace tether::series {

/// How many input series the node tracks, in total and per rule (by the rule's
/// position). Shared by the node's shards; counts are exact, the limits they enforce
/// may be overshot by one batch per shard racing for the last places.
struct input_counts {
  static constexpr size_t max_rules = 4096; ///< rules past this have no own limit

  std::atomic<int64_t> total{0};
  std::array<std::atomic<int64_t>, max_rules> per_rule{};
};

/// One shard's tracked input series (the key as sent, before rules), with when each
/// was last seen, enforcing the rules' `max_input_series` and the node's
/// `max_input_series_per_node`. Inputs quiet for the staleness interval are
/// forgotten by `expire`. Not thread-safe: owned by its shard.
class input_tracker : public input_gate {
public:
  input_tracker(std::shared_ptr<input_counts> counts,
                std::shared_ptr<rules::rule_cache> rules);

  ~input_tracker() override;

  std::string admit(const shard_write& w, const slice_range& r) override;
  void commit(const shard_write& w, const slice_range& r) override;

  /// Forgets inputs not seen since `cutoff_ms`; returns how many.
  size_t expire(int64_t cutoff_ms);

  size_t size() const noexcept {
    return inputs_.size();
  }

private:
  struct entry {
    int64_t seen_ms;
    uint32_t rule; ///< 1 + index, 0 = no rule
  };

  struct identity_hash {
    size_t operator()(uint64_t h) const noexcept {
      return static_cast<size_t>(h);
    }
  };

  void count(uint32_t rule, int64_t delta);

  std::shared_ptr<input_counts> counts_;
  std::shared_ptr<rules::rule_cache> rules_;
  std::unordered_map<uint64_t, entry, identity_hash> inputs_;
  std::vector<std::pair<uint64_t, uint32_t>> fresh_; ///< scratch: (input, rule)
};

} // namespace tether::series
