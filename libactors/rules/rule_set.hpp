#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "keys/series_key.hpp"

namespace re2 {
class RE2;
}

namespace tether::rules {

/// Defaults a rule inherits when it does not set a field.
struct rule_defaults {
  uint32_t window_ms = 10000;
  std::vector<double> quantiles{0.5, 0.9, 0.99};
  uint64_t max_input_series = 0; ///< 0 = no per-rule limit
};

/// How a label value is matched.
enum class match_op : uint8_t { eq, ne, re, nre };

struct label_matcher {
  std::string name;
  match_op op = match_op::eq;
  std::string value;
  /// For re/nre: the compiled RE2 pattern, matched against the whole value like
  /// PromQL. Shared by copies of the matcher; immutable, so thread-safe to match.
  std::shared_ptr<const re2::RE2> re;

  bool matches(std::string_view actual) const;
};

/// A rule of the cardinality shield: matches input series and says which labels the
/// output keeps. Immutable once parsed.
struct rule {
  std::string name;
  /// Metric name match: exact text, or a regex (globs are compiled to one).
  bool exact = true;
  std::string metric;
  std::shared_ptr<const re2::RE2> metric_re; ///< when !exact
  std::vector<label_matcher> matchers;
  /// `by` keeps only `labels`; otherwise (`without`) the output drops them.
  bool by = false;
  std::vector<std::string> labels; ///< sorted
  std::string output_name;         ///< empty: the input metric name
  uint32_t window_ms = 10000;
  std::vector<double> quantiles;
  uint64_t max_input_series = 0;
  /// Outputs exported on /metrics and by remote write; empty = every output of the
  /// series' kind. Names: total, rate, increase (counters); last, min, max, sum,
  /// count, mean (gauges); quantiles, sum, count, min, max (histograms).
  std::vector<std::string> outputs;
  uint32_t index = 0; ///< position in the rule set; the first matching rule wins

  /// Whether output `name` is exported for this rule's series.
  bool exports(std::string_view name) const;

  bool keeps(std::string_view label) const;
};

/// A parsed, validated set of rules with an index by exact metric name, so matching
/// a sample costs a hash lookup plus the non-exact rules. Thread-safe to share
/// (immutable).
class rule_set {
public:
  /// Parses the JSON rules document (format in docs/aggregation.md). On failure
  /// returns nullptr and sets `error` to a message naming the rule and the problem.
  static std::shared_ptr<const rule_set> parse(std::string_view json,
                                               const rule_defaults& defaults,
                                               std::string& error);

  /// Reads and parses a rules file.
  static std::shared_ptr<const rule_set> load(const std::string& path,
                                              const rule_defaults& defaults,
                                              std::string& error);

  /// An empty set: every series aggregates under its own key.
  static std::shared_ptr<const rule_set> empty(const rule_defaults& defaults);

  /// The first rule matching the metric and its normalised labels, or nullptr.
  const rule* match(std::string_view metric, const keys::label_ref* labels,
                    size_t n) const;

  const std::vector<rule>& rules() const noexcept {
    return rules_;
  }

  const rule_defaults& defaults() const noexcept {
    return defaults_;
  }

  uint64_t max_input_series_per_node = 0; ///< 0 = no limit

  /// Whether any input series limit is set: only then are inputs tracked.
  bool has_input_limits() const {
    if (max_input_series_per_node > 0)
      return true;
    for (auto& r : rules_)
      if (r.max_input_series > 0)
        return true;
    return false;
  }

private:
  struct name_entry {
    std::string metric;
    std::vector<uint32_t> rules; ///< indices, ascending
  };

  std::vector<rule> rules_;
  std::vector<uint32_t> pattern_rules_; ///< non-exact rules, ascending
  std::vector<name_entry> by_name_;     ///< sorted by metric for binary search
  rule_defaults defaults_;
};

/// Applies a rule's label selection to normalised input labels: writes the labels
/// the output keeps into `out[0..n)` (still sorted) and returns n.
size_t output_labels(const rule& r, const keys::label_ref* in, size_t n,
                     keys::label_ref* out);

} // namespace tether::rules
