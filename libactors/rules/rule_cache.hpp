#pragma once

#include <atomic>
#include <memory>

#include "rules/rule_set.hpp"

namespace tether::rules {

/// The node's current rule set: one immutable snapshot behind an atomic pointer,
/// replaced as a whole on reload and read once per batch. Thread-safe.
class rule_cache {
public:
  explicit rule_cache(std::shared_ptr<const rule_set> initial)
    : set_(std::move(initial)) {
  }

  std::shared_ptr<const rule_set> load() const {
    return std::atomic_load_explicit(&set_, std::memory_order_acquire);
  }

  void store(std::shared_ptr<const rule_set> s) {
    std::atomic_store_explicit(&set_, std::move(s), std::memory_order_release);
  }

  /// The quantiles of rule `rule` (1 + index, as carried by samples), or the
  /// defaults when there is no such rule (any more).
  std::vector<double> quantiles(uint32_t rule) const {
    auto s = load();
    if (rule > 0 && rule <= s->rules().size())
      return s->rules()[rule - 1].quantiles;
    return s->defaults().quantiles;
  }

private:
  std::shared_ptr<const rule_set> set_;
};

} // namespace tether::rules
