#pragma once

#include "tether-load/id_subset.hpp"
#include "tether-load/load_options.hpp"
#include "tether-load/zipf_sampler.hpp"

#include "wire/tether.pb.h"

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace tether::tools::load {

/// The series ids one connection writes, in the order it cycles through them:
/// `first, first + stride, ...` (`count` ids).
struct series_cycle {
  std::uint64_t first = 0;
  std::uint64_t stride = 1;
  std::uint64_t count = 1;

  /// The id at position `i` of the endless cycle.
  std::uint64_t at(std::uint64_t i) const noexcept {
    return first + (i % count) * stride;
  }
};

/// Splits series ids `0 .. series-1` over `connections` connections: connection `c` owns
/// the ids `c, c + connections, c + 2 * connections, ...`, so every id is written by
/// exactly one connection. With fewer series than connections, connection `c` writes id
/// `c % series` alone. Preconditions: `conn < connections`, `series > 0`.
series_cycle series_for_connection(std::uint32_t conn, std::uint32_t connections,
                                   std::uint64_t series);

/// How series ids map to metric names and labels (`--metrics`, `--groups`).
struct series_shape {
  /// 0: every series uses the single name `metric_name(kind)`; M > 0: series `i` uses
  /// metric `i % M` (`tether_load_<i % M>_total` or `tether_load_<i % M>_value`).
  std::uint32_t metrics = 0;
  /// 0: a series has the one label `series="<i>"`; G > 0: also `group="<group_of(i)>"`.
  std::uint64_t groups = 0;

  /// The group of series `i`: `(i / max(M, 1)) % G` (0 without groups). Dividing by the
  /// metric count first makes metric and group independent: with `M * G` dividing the
  /// series count, the series cover every (metric, group) pair equally often, so a rule
  /// dropping `series` folds them into `M * G` outputs.
  std::uint64_t group_of(std::uint64_t id) const noexcept {
    if (groups == 0)
      return 0;
    return (id / (metrics > 0 ? metrics : 1)) % groups;
  }

  /// Distinct output series when `series` ids are folded by dropping the `series`
  /// label: `max(M, 1) * max(G, 1)`, or fewer if there are fewer ids.
  std::uint64_t folded_outputs(std::uint64_t series) const noexcept;
};

/// Zipf-distributed series (`--keys zipf`): every sample's id is a rank drawn from a
/// `zipf_sampler` over `0 .. series-1` (id 0 the most frequent).
struct zipf_keys {
  std::uint64_t series = 1;
  double s = 1.0;
  /// Seeds the generator together with `stream`: same (seed, stream), same ids.
  std::uint64_t seed = 1;
  /// Separates the draws of the connections of one run (the connection index).
  std::uint64_t stream = 0;
};

/// Metric name used for `kind` without `--metrics`: `tether_load_total` for counters,
/// `tether_load_value` for gauges.
std::string_view metric_name(sample_kind kind);

/// Metric name of series `id`: `metric_name(kind)` if `metrics` is 0, else
/// `tether_load_<id % metrics>_total` (counters) or `tether_load_<id % metrics>_value`.
std::string metric_name(sample_kind kind, std::uint32_t metrics, std::uint64_t id);

/// Builds the serialized `ClientFrame{write}` frames of one connection.
///
/// Each sample names series `id` as `metric_name(kind, shape.metrics, id)` with the
/// labels `group="<shape.group_of(id)>"` (only if `shape.groups > 0`) and
/// `series="<id>"`.
///
/// The series come from the connection's `series_cycle`, or with `zipf` from Zipf draws
/// over all ids (the cycle is then ignored), or, for a routed connection, from `subset`
/// (weighted draws with `zipf`, else its cycle; `series` then only bounds the ids).
///
/// The frame and its samples are built once; each `next` only rewrites the sequence, the
/// series of each sample (metric name, `group` and `series` labels; skipped when the cycle
/// length divides the batch size, as every batch then names the same series) and, for
/// gauges, the value. The metric names are computed once and assigned into the samples'
/// existing strings, whose capacity already fits the longest name; serialization goes
/// into a buffer reused across calls, so the steady state allocates nothing.
/// Counters are DELTA samples of value 1; gauges carry the batch's sequence number as
/// value; timestamps are 0 (the node's receive time).
/// Thread safety: none.
class batch_builder {
public:
  batch_builder(sample_kind kind, std::uint32_t batch_size, series_cycle series,
                series_shape shape = {}, std::optional<zipf_keys> zipf = std::nullopt,
                std::shared_ptr<const id_subset> subset = nullptr);

  /// Serializes the next batch: `size` samples (clamped to 1..batch size) continuing the
  /// series cycle, with write sequence `sequence`. The view stays valid until the next
  /// call.
  std::string_view next(std::uint64_t sequence, std::uint32_t size);

  /// Upper bound on the size of any frame `next` returns.
  std::size_t max_frame_bytes() const noexcept {
    return max_frame_bytes_;
  }

  /// Samples in a full batch.
  std::uint32_t batch_size() const noexcept {
    return batch_size_;
  }

  /// Position in the series cycle of the next batch's first sample.
  std::uint64_t cursor() const noexcept {
    return cursor_;
  }

  /// The series ids of the last batch `next` built, in sample order.
  const std::vector<std::uint64_t>& ids() const noexcept {
    return ids_;
  }

private:
  void resize(std::uint32_t size);
  void set_series(tether::v1::Sample& sample, std::uint64_t id);
  void set_fields(tether::v1::Sample& sample, const std::string* name, std::uint64_t group,
                  std::uint64_t id);

  sample_kind kind_;
  std::uint32_t batch_size_;
  series_cycle series_;
  series_shape shape_;
  std::vector<std::string> names_; ///< metric `k`'s name at `k`; empty without --metrics
  int series_label_ = 0;           ///< index of the `series` label (after `group`)
  std::uint64_t cursor_ = 0;
  bool labels_fixed_;
  bool labels_written_ = false;
  std::optional<zipf_sampler> zipf_;
  std::shared_ptr<const id_subset> subset_;
  std::mt19937_64 engine_;
  std::vector<std::uint64_t> ids_;
  tether::v1::ClientFrame frame_;
  tether::v1::Sample prototype_;
  std::string buffer_;
  std::size_t max_frame_bytes_ = 0;
};

/// The builder of connection `conn` of a run with `opts`: the connection's series cycle
/// (`--keys uniform`) or its own Zipf draws (`--keys zipf`, seeded with `--seed` and
/// `conn`). Every system under test gets its batches from here, so the same options give
/// the same samples.
/// With `subset` (a routed connection, `--routed`): the ids are those of `subset`.
batch_builder make_batch_builder(const load_options& opts, std::uint32_t conn,
                                 std::shared_ptr<const id_subset> subset = nullptr);

/// Serializes a `ClientFrame{hello}` for `producer_id` (protocol version 1).
std::string make_hello(const std::string& producer_id, const std::string& token);

} // namespace tether::tools::load
