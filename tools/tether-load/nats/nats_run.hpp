#pragma once

#include "common/result.hpp"
#include "tether-load/load_report.hpp"
#include "tether-load/nats/nats_consumer.hpp"
#include "tether-load/nats/nats_options.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace tether::tools::nats {

/// What a failure experiment (`--kill-at`) did.
struct failure_info {
  /// Seconds from the start of sending to the SIGKILL; negative if none was sent.
  double at_s = -1.0;
  /// The server killed (`n1`, `n2`, ...) and why it was chosen.
  std::string server;
  std::string chosen_as;
  /// Leaders just before the kill, and the stream's leader at the end of the run.
  std::string stream_leader;
  std::string consumer_leader;
  std::string stream_leader_after;
  /// The server the consumer's connection was on, and the producers connected to the
  /// victim.
  std::string consumer_on;
  std::vector<std::uint32_t> producers_on;
  /// Why no kill happened, if none did.
  std::string error;
};

/// The outcome of a baseline run.
struct nats_totals {
  /// What tether-load reports, with the broker's meanings: acks are JetStream publish
  /// acks, visibility is measured in the consumer.
  load::load_totals load;
  consumer_counters consumer;
  /// Seconds from the start to the consumer's last applied message.
  double consumer_seconds = 0.0;
  /// Samples the consumer had applied when sending stopped, and the seconds until then:
  /// its rate under the full load (after the stop it has the machine to itself).
  std::uint64_t applied_while_sending = 0;
  double sending_seconds = 0.0;
  std::uint64_t series = 0;
  /// Where the servers were: "launched N" or the URLs given.
  std::string servers;
  /// The first server's URL (the report's `server`).
  std::string first_url;
  failure_info failure;
};

/// One run of the baseline: launches the cluster (unless `--nats-url`), creates the
/// stream, starts the consumer and the producers together, prints a progress line per
/// second on stderr, stops at `--duration`, `--samples` or the first SIGINT/SIGTERM
/// (the second aborts), lets the producers wait for their acks and the consumer apply
/// what was stored (each bounded by `--drain-timeout`), then stops everything it started.
///
/// The caller must have blocked SIGINT and SIGTERM in every thread (before creating
/// any, libnats' included): the run waits for them with `sigtimedwait`, so that a
/// signal never interrupts a thread in the middle of the C client.
/// Thread safety: `run` may be called once, from one thread.
class nats_run {
public:
  explicit nats_run(const nats_options& opts);

  /// Fails when the setup fails (rules, cluster, stream, connections); everything else is
  /// reported in the totals.
  result<nats_totals> run();

private:
  const nats_options& opts_;
};

/// True when every producer connected, every batch was acked, nothing failed, the
/// consumer applied every acked batch without error and every tracked update became
/// visible.
bool run_succeeded(const nats_options& opts, const nats_totals& totals);

/// The report for people: tether-load's report plus the consumer's lines.
std::string render_text(const nats_options& opts, const nats_totals& totals);

/// The report as one JSON object: tether-load's fields plus `consumer`, `storage`,
/// `replicas`, `servers`, `publish_timeout_ms`, `ack_wait_ms` and, with `--kill-at`,
/// `failure`.
std::string render_json(const nats_options& opts, const nats_totals& totals);

/// The options as the shared report shows them: `server` is the first server's address.
load::load_options report_options(const nats_options& opts, const std::string& first_url);

} // namespace tether::tools::nats
