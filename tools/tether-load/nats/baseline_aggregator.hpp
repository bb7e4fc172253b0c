#pragma once

#include "rules/rule_set.hpp"
#include "series/slice_state.hpp"
#include "tether/options.hpp"
#include "wire/keyed_batch.hpp"

#include "wire/tether.pb.h"

#include <google/protobuf/arena.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tether::tools::nats {

/// How the baseline aggregates: the same knobs, with the same defaults, as a node.
struct aggregator_config {
  std::uint32_t slice_count = 1024;
  std::uint32_t lateness_ms = 5000;
  std::uint32_t staleness_ms = 300000;
  double accuracy = 0.01;
  /// Rules and the default window length (rule_defaults::window_ms); an empty set when
  /// null.
  std::shared_ptr<const tether::rules::rule_set> rules;
  tether::limits limits;
};

/// What applying one write did.
struct apply_outcome {
  std::uint32_t applied = 0;
  std::uint32_t late = 0;
  /// Every slice the batch touched had applied it before.
  bool duplicate = false;
  /// Empty on success; otherwise the error a node would have answered with.
  std::string error;
};

/// The consumer-side state of the broker baseline: Tether's own aggregation code,
/// driven by a consumer instead of a node's actors, so that both systems compute the
/// same thing.
///
/// A write goes through the same steps as on a node: validation and rules
/// (`wire::batch_keyer`), split by slice (stable, batch order within a slice), and per
/// slice exactly-once by (producer, sequence) plus aggregation (`series::slice_state`).
/// Windows close at end + lateness as on a node's shards (`close_due`). What a node adds
/// and this does not: routing between nodes and actors, replication (the broker does
/// that here), subscribers and exporters.
/// Thread safety: none; one consumer thread owns it.
class baseline_aggregator {
public:
  explicit baseline_aggregator(aggregator_config cfg);

  /// Decodes a serialized `ClientFrame{write}` sent by `producer` and applies it.
  /// `received_ms` is when the write entered the system (a node's gateway receive time;
  /// here the broker's timestamp of the message): samples with timestamp 0 get it, and
  /// the future bound is checked against it. `now_ms` is the applier's clock (Unix ms),
  /// against which lateness is judged, as on a shard. Closes due windows first.
  apply_outcome apply(std::string_view producer, const void* data, std::size_t size,
                      std::int64_t received_ms, std::int64_t now_ms);

  /// Closes every window due at `now_ms`; returns the number of series windows closed.
  std::uint64_t close_due(std::int64_t now_ms);

  /// The state of output series `key` (canonical), or null when it does not exist.
  const tether::series::series_state* find(std::string_view key);

  /// Output series held.
  std::uint64_t series_count() const noexcept {
    return series_;
  }

  /// Series windows closed so far.
  std::uint64_t windows_closed() const noexcept {
    return windows_closed_;
  }

private:
  tether::series::slice_state& slice(std::uint32_t id);

  aggregator_config cfg_;
  tether::wire::batch_keyer keyer_;
  /// Frames are decoded into an arena reset before each decode (a reused message would
  /// free and allocate every sample: protobuf frees oneof members on Clear()), as the
  /// node's gateway does.
  google::protobuf::Arena arena_;
  tether::wire::keyed_batch keyed_;
  tether::series::shard_write write_;
  std::vector<std::uint32_t> counts_;
  std::vector<std::unique_ptr<tether::series::slice_state>> slices_;
  std::vector<tether::series::opened_window> opened_;
  /// Open windows by the time they close (end + lateness), as a shard keeps them.
  std::map<std::int64_t, std::vector<tether::series::opened_window>> closing_;
  std::uint64_t series_ = 0;
  std::uint64_t windows_closed_ = 0;
};

/// The running sample count of a series: the total of a counter written in deltas of 1,
/// the number of samples of a gauge or histogram (what the visibility measurement
/// reads, as tether-load's reader does with a query).
std::uint64_t running_count(const tether::series::series_state& state);

} // namespace tether::tools::nats
