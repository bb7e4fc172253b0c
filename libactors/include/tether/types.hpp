#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tether/errc.hpp"

namespace tether {

/// What a sample measures. Values equal the wire protocol's `tether.v1.Kind`.
enum class kind : uint8_t { unspecified = 0, counter = 1, gauge = 2, histogram = 3 };

/// How a counter sample's value is meant. Values equal `tether.v1.CounterMode`.
enum class counter_mode : uint8_t { delta = 0, cumulative = 1 };

/// Lower-case name of a kind, e.g. "counter".
const char* to_string(kind k) noexcept;

/// One observation as an embedding application hands it to Tether.
struct sample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  tether::kind kind = kind::gauge;
  double value = 0;
  int64_t timestamp_ms = 0; ///< 0 = the time the node receives it
  tether::counter_mode mode = counter_mode::delta;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sample& x) {
  return f(x.name, x.labels, x.kind, x.value, x.timestamp_ms, x.mode);
}

/// The outcome of one write batch. A failed batch is reported as a `caf::error` with
/// an `errc` code instead.
struct write_ack {
  uint64_t sequence = 0;
  uint32_t accepted = 0;  ///< samples newly applied by this delivery
  bool duplicate = false; ///< every part of the batch had been applied before
  uint32_t late = 0;      ///< samples dropped because their window had closed
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, write_ack& x) {
  return f(x.sequence, x.accepted, x.duplicate, x.late);
}

/// One closed window of one output series: the aggregate the window emitted.
/// `end_ms == 0` means no window has closed yet.
struct window_view {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  uint64_t count = 0; ///< samples in the window
  double sum = 0;     ///< gauges, histograms: sum of values; counters: = increase
  double min = 0;
  double max = 0;
  double last = 0;    ///< gauges: the value with the newest timestamp
  double mean = 0;
  double increase = 0; ///< counters: increase within the window
  double total = 0;    ///< counters: running total at the window's end
  double rate = 0;     ///< counters: increase per second
  std::vector<std::pair<double, double>> quantiles; ///< histograms: (q, value)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, window_view& x) {
  return f(x.start_ms, x.end_ms, x.count, x.sum, x.min, x.max, x.last, x.mean,
           x.increase, x.total, x.rate, x.quantiles);
}

/// A read of one output series: where it lives, its running state and its latest
/// closed window.
struct series_view {
  std::string key;  ///< canonical output series key
  uint32_t slice = 0;
  std::string node; ///< node holding the slice's primary
  uint64_t epoch = 0;
  bool found = false;
  tether::kind kind = kind::unspecified;
  double total = 0; ///< counters: running total, never decreasing
  double last = 0;
  double min = 0;
  double max = 0;
  double sum = 0;
  uint64_t count = 0;
  int64_t updated_ms = 0;
  window_view window; ///< latest closed window (for updates: the one that closed)
  uint32_t rule = 0;  ///< 1 + index of the rule that shaped the series, 0 = none
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, series_view& x) {
  return f(x.key, x.slice, x.node, x.epoch, x.found, x.kind, x.total, x.last,
           x.min, x.max, x.sum, x.count, x.updated_ms, x.window, x.rule);
}

} // namespace tether
