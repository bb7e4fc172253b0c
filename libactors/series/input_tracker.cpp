#include "series/input_tracker.hpp"

#include <algorithm>
#include <map>

namespace tether::series {

input_tracker::input_tracker(std::shared_ptr<input_counts> counts,
                             std::shared_ptr<rules::rule_cache> rules)
  : counts_(std::move(counts)), rules_(std::move(rules)) {
}

input_tracker::~input_tracker() {
  // The node's counts outlive this shard's part of them.
  for (auto& [hash, e] : inputs_)
    count(e.rule, -1);
}

void input_tracker::count(uint32_t rule, int64_t delta) {
  counts_->total.fetch_add(delta, std::memory_order_relaxed);
  if (rule > 0 && rule <= input_counts::max_rules)
    counts_->per_rule[rule - 1].fetch_add(delta, std::memory_order_relaxed);
}

std::string input_tracker::admit(const shard_write& w, const slice_range& r) {
  fresh_.clear();
  for (auto i = r.begin; i < r.end; ++i) {
    auto& s = w.samples[i];
    if (inputs_.count(s.input_hash) == 0)
      fresh_.emplace_back(s.input_hash, s.rule);
  }
  if (fresh_.empty())
    return {};
  std::sort(fresh_.begin(), fresh_.end());
  fresh_.erase(std::unique(fresh_.begin(), fresh_.end(),
                           [](auto& a, auto& b) { return a.first == b.first; }),
               fresh_.end());
  auto set = rules_->load();
  auto node_limit = set->max_input_series_per_node;
  auto total = counts_->total.load(std::memory_order_relaxed);
  if (node_limit > 0
      && total + static_cast<int64_t>(fresh_.size()) > static_cast<int64_t>(node_limit))
    return "the node tracks " + std::to_string(total)
           + " input series; its limit (max_input_series_per_node) is "
           + std::to_string(node_limit);
  std::map<uint32_t, int64_t> per_rule;
  for (auto& [hash, rule] : fresh_)
    if (rule > 0)
      ++per_rule[rule];
  for (auto& [rule, n] : per_rule) {
    if (rule > set->rules().size() || rule > input_counts::max_rules)
      continue;
    auto& def = set->rules()[rule - 1];
    if (def.max_input_series == 0)
      continue;
    auto now = counts_->per_rule[rule - 1].load(std::memory_order_relaxed);
    if (now + n > static_cast<int64_t>(def.max_input_series))
      return "rule '" + def.name + "' tracks " + std::to_string(now)
             + " input series; its limit (max_input_series) is "
             + std::to_string(def.max_input_series);
  }
  return {};
}

void input_tracker::commit(const shard_write& w, const slice_range& r) {
  for (auto i = r.begin; i < r.end; ++i) {
    auto& s = w.samples[i];
    auto [it, added] = inputs_.try_emplace(s.input_hash, entry{s.timestamp_ms, s.rule});
    if (added)
      count(s.rule, 1);
    else
      it->second.seen_ms = std::max(it->second.seen_ms, s.timestamp_ms);
  }
}

size_t input_tracker::expire(int64_t cutoff_ms) {
  size_t n = 0;
  for (auto it = inputs_.begin(); it != inputs_.end();) {
    if (it->second.seen_ms < cutoff_ms) {
      count(it->second.rule, -1);
      it = inputs_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

} // namespace tether::series
