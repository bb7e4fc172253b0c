#pragma once

#include "tether-load/batch_builder.hpp"
#include "tether-load/load_options.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace tether::tools::load {

/// Which output series a node aggregates each series id of a run into, and the output
/// keys' text, so that a reader can follow them (`--visible-keys`).
///
/// Without folding the output key is the input key (no rule matches the load's series):
/// `NAME{group="G",series="ID"}`, one output per id. With `fold` the node's rules drop
/// the `series` label (`without: ["series"]` on every load metric, as tools/bench/fold.sh
/// and tools/bench/compare.sh configure them): id `i` feeds `NAME{group="G"}` (no braces
/// without groups), and ids `0 .. max(M,1) * max(G,1) - 1` are exactly the distinct
/// outputs: output `o` is the output of id `o`.
/// Thread safety: immutable after construction.
class output_map {
public:
  output_map(sample_kind kind, std::uint64_t series, series_shape shape, bool fold);

  /// The map of a run with `opts` (`--fold-series` sets `fold`).
  static output_map of(const load_options& opts);

  /// Number of distinct output series the ids fold into.
  std::uint64_t count() const noexcept {
    return count_;
  }

  /// The output series (in `[0, count())`) that id `id` feeds.
  std::uint64_t output_of(std::uint64_t id) const noexcept {
    if (!fold_)
      return id;
    return id % metrics_ + metrics_ * shape_.group_of(id);
  }

  /// The canonical key text of output `output` (docs/protocol.md section 12.1).
  std::string key(std::uint64_t output) const;

  /// `n` outputs spread evenly over `[0, count())`: `floor(j * count() / n)` for
  /// `j = 0 .. n-1`, ascending and distinct (`n` is clamped to `count()`). Output 0, the
  /// hottest under `--keys zipf`, is always among them.
  std::vector<std::uint64_t> spread(std::uint64_t n) const;

private:
  sample_kind kind_;
  series_shape shape_;
  bool fold_;
  std::uint64_t metrics_; ///< max(M, 1)
  std::uint64_t count_;
};

} // namespace tether::tools::load
