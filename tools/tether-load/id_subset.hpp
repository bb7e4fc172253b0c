#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace tether::tools::load {

/// The series ids one routed connection writes: those of one node, drawn in proportion
/// to their Zipf weights (`--keys zipf`: the distribution of the whole run restricted to
/// these ids, Walker's alias method, O(1) per draw) or cycled through in order
/// (`--keys uniform`).
/// Thread safety: immutable after construction; draws use the caller's engine.
class id_subset {
public:
  /// Cycles through `ids` in order; `share` is their part of the producer's samples.
  static std::shared_ptr<const id_subset> cycle(std::vector<std::uint64_t> ids,
                                                double share = 1.0);

  /// Draws id `x` of `ids` with probability proportional to `(x + 1)^-s` (the rank of a
  /// series is its id + 1, as in `zipf_sampler`); `share` as for `cycle`.
  static std::shared_ptr<const id_subset> zipf(std::vector<std::uint64_t> ids, double s,
                                               double share = 1.0);

  std::uint64_t size() const noexcept {
    return ids_.size();
  }

  bool weighted() const noexcept {
    return !alias_.empty();
  }

  /// Position `i` of the endless cycle.
  std::uint64_t at(std::uint64_t i) const noexcept {
    return ids_[i % ids_.size()];
  }

  /// One weighted draw (only if `weighted()`).
  template <class Engine>
  std::uint64_t draw(Engine& engine) const {
    auto x = static_cast<double>(engine() >> 11) * 0x1p-53 * static_cast<double>(ids_.size());
    auto i = static_cast<std::size_t>(x);
    if (i >= ids_.size())
      i = ids_.size() - 1;
    return (x - static_cast<double>(i)) < keep_[i] ? ids_[i] : ids_[alias_[i]];
  }

  /// The part of its producer's samples these ids receive: their Zipf weight over that
  /// of `0 .. series-1`, or their part of the producer's cycle.
  double share() const noexcept {
    return share_;
  }

private:
  std::vector<std::uint64_t> ids_;
  std::vector<double> keep_;          ///< probability of keeping column i
  std::vector<std::uint32_t> alias_;  ///< the other id of column i
  double share_ = 1.0;
};

} // namespace tether::tools::load
