#pragma once

#include "common/latency_histogram.hpp"
#include "tether-load/activity_timeline.hpp"
#include "tether-load/load_options.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace tether::tools::load {

/// Counters of one connection or, summed, of a whole run.
struct load_counters {
  /// Connections that completed the hello/welcome exchange.
  std::uint32_t connections_ok = 0;
  std::uint64_t batches_sent = 0;
  std::uint64_t batches_acked = 0;
  /// Batches answered by an error frame instead of an ack.
  std::uint64_t batches_failed = 0;
  /// Batches still unanswered when the connection ended.
  std::uint64_t batches_unacked = 0;
  std::uint64_t samples_sent = 0;
  std::uint64_t samples_acked = 0;
  /// Sum of `Ack.accepted`: samples newly applied by the node.
  std::uint64_t samples_accepted = 0;
  /// Acks with `duplicate` set.
  std::uint64_t duplicates = 0;
  /// Error frames, connection failures, acks for unknown sequences.
  std::uint64_t errors = 0;
  /// Open loop only: batches sent more than `send_schedule::late_threshold` after their
  /// scheduled time (held back by a full in-flight window, a busy socket or a slow loop).
  std::uint64_t batches_late = 0;
  /// Batches sent again under their sequence after a retryable error (UNAVAILABLE, a
  /// publish ack that timed out) or a lost connection; each resend counts.
  std::uint64_t retries = 0;
  /// Connections opened again after one was lost.
  std::uint64_t reconnects = 0;

  /// Adds `other` field by field.
  load_counters& operator+=(const load_counters& other);
};

/// One `activity_timeline` as reported: amounts per bucket and the longest gaps.
struct timeline_data {
  std::vector<std::uint64_t> buckets;
  std::vector<activity_timeline::gap> gaps;

  static timeline_data of(const activity_timeline& t) {
    return {t.buckets(), t.gaps()};
  }
};


/// The outcome of a run, as reported.
struct load_totals {
  load_counters counters;
  /// Write-to-ack latency of acked batches in nanoseconds; in open loop measured from each
  /// batch's scheduled send time.
  latency_histogram latency;
  /// Seconds from the start of sending to the end of sending or the last ack, whichever
  /// is later.
  double elapsed_seconds = 0.0;
  /// Seconds from the start of sending to its stop (duration, sample limit, signal or the
  /// last connection gone); the achieved rate is samples sent over this interval.
  double send_seconds = 0.0;
  /// Write-to-visible latency in nanoseconds, one value per (batch, tracked output) the
  /// batch wrote to (`visibility_tracker`); empty without `--visible-keys`.
  latency_histogram visible;
  /// Outputs actually tracked (`--visible-keys`, or fewer if there are fewer outputs).
  std::uint32_t visible_keys = 0;
  /// Updates of tracked outputs that never became visible before the reader stopped.
  std::uint64_t visible_unseen = 0;
  /// Tracked outputs that the reader never found (wrong `--fold-series` for the rules?).
  std::uint64_t visible_missing = 0;
  /// The reader's own delay: round trips of its queries (or none for an in-process
  /// reader), in nanoseconds.
  latency_histogram reader_rtt;
  /// Errors of the reader (connection failures, error frames).
  std::uint64_t reader_errors = 0;
  /// The system under test, as reported: `tether` or the baseline's name.
  std::string system = "tether";
  /// Node name from the first welcome, empty if none arrived.
  std::string node;
  /// Connections opened: `--connections`, or one per producer and node with `--routed`
  /// (0: `--connections`).
  std::uint32_t sessions = 0;
  /// Smallest in-flight limit actually used by a connection, when the node's
  /// `max_inflight_batches` lowered `--inflight`; 0 otherwise.
  std::uint32_t inflight_lowered_to = 0;
  /// Wall-clock time (ms since the Unix epoch) when sending started, so that events
  /// outside the run (a node killed by a script) can be placed on its timelines; 0 if
  /// sending never started.
  std::int64_t start_unix_ms = 0;
  /// Width of the timelines' buckets.
  std::uint32_t timeline_bucket_ms = 100;
  /// Acked samples over time, and the longest stretches without an ack.
  timeline_data acked;
  /// Updates of tracked outputs becoming visible over time, and the longest stretches
  /// without one (`--visible-keys`).
  timeline_data visible_over_time;
  /// The longest stretches without a visible update of each tracked output, by slot.
  std::vector<std::vector<activity_timeline::gap>> visible_gaps_by_output;
};

class visibility_tracker;

/// Copies the visibility timelines of `tracker` (overall and per output) into `totals`.
void take_visible_timelines(const visibility_tracker& tracker, load_totals& totals);

/// True when the run succeeded: every connection came up, every batch sent was acked,
/// no error occurred and, when visibility was measured, every update became visible.
bool run_succeeded(const load_options& opts, const load_totals& totals);

/// The final report for people: one `label  value` line per item.
std::string render_report_text(const load_options& opts, const load_totals& totals);

/// The final report as one JSON object on one line. Latencies are in milliseconds;
/// `latency_spectrum_ms` and `visible_spectrum_ms` list `[q, ms]` pairs for q = 0.5,
/// 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995 and 0.9999. `timeline` has the acked
/// samples and visible updates per `bucket_ms` from `start_unix_ms`; `ack_gaps` and
/// `visible_gaps` the longest stretches without one, as `{from_s, to_s, open}` in
/// seconds from the start (`activity_timeline`), and `visible_gaps_by_output` those of
/// each tracked output.
std::string render_report_json(const load_options& opts, const load_totals& totals);

/// One progress line: elapsed time, acked samples per second over the last interval,
/// totals so far.
std::string format_progress(double elapsed_seconds, double samples_per_second,
                            std::uint64_t samples_acked, std::uint64_t errors,
                            std::uint64_t batches_in_flight);

/// `p50 A  p90 B  p99 C  p99.9 D  max E` in milliseconds, or `-` when empty.
std::string format_quantiles(const latency_histogram& h);

/// Nanoseconds as milliseconds with three decimals, e.g. `1.234`.
std::string format_ms(std::uint64_t nanoseconds);

} // namespace tether::tools::load
