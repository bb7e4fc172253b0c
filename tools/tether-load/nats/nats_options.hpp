#pragma once

#include "common/result.hpp"
#include "tether-load/load_options.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tether::tools::nats {

/// Where JetStream keeps the stream.
enum class storage_kind { memory, file };

std::string_view to_string(storage_kind kind);

/// Which server a failure experiment kills (`--kill-server`).
enum class kill_target {
  /// The stream's leader when the kill is due (JetStream stream info).
  stream_leader,
  /// The durable consumer's leader when the kill is due (consumer info).
  consumer_leader,
  /// The server `kill_index` (from 0).
  index,
};

/// Everything `tether-nats-baseline` takes from its command line: the workload options
/// of tether-load (same names, same defaults, same meaning) plus the broker's.
struct nats_options {
  /// The workload. `server`, `token`, `threads`, `max-frame-bytes` and `visible-poll`
  /// have no meaning here and are not accepted.
  load::load_options load;
  /// Servers to launch (`--nats-servers`, 1..9, 3); ignored with `--nats-url`.
  std::uint32_t servers = 3;
  /// An existing server or cluster to use instead of launching one (`--nats-url`, comma
  /// separated `nats://HOST:PORT`).
  std::vector<std::string> urls;
  /// First port of the launched servers (`--nats-port`, 0 = free ports): clients on
  /// P + i, routes on P + 10 + i.
  std::uint16_t port = 0;
  /// Stream replicas (`--replicas`, 1..5, 3; at most the servers launched).
  std::uint32_t replicas = 3;
  /// Stream storage (`--storage`, memory or file, memory: like Tether's state, and the
  /// faster of the two).
  storage_kind storage = storage_kind::memory;
  /// Bound on the stream's size in bytes per replica (`--stream-max-bytes`, 1M..64G,
  /// 1G). The stream keeps messages until the consumer acknowledged them (interest
  /// retention); when full it refuses new ones (discard new), so a consumer that falls
  /// too far behind shows up as failed publishes, not as lost messages.
  std::uint64_t stream_max_bytes = 1ULL << 30;
  /// Parent of the launched cluster's directory (`--nats-dir`, default $TMPDIR or /tmp).
  std::string dir;
  /// Keep that directory (configs, logs, stores) after the run (`--keep-dir`).
  bool keep_dir = false;
  /// The nats-server executable (`--nats-server-bin`, nats-server).
  std::string server_binary = "nats-server";
  /// Bound on the cluster coming up and the stream being created (`--ready-timeout`,
  /// 1s..120s, 30s).
  std::chrono::milliseconds ready_timeout{30'000};
  /// Aggregation rules, the node's format (`--rules-file`, default none).
  std::string rules_file;
  /// Window length of series no rule matches (`--window-ms`, 1..86400000, 10000).
  std::uint32_t window_ms = 10'000;
  /// Lateness (`--lateness-ms`, 0..3600000, 5000).
  std::uint32_t lateness_ms = 5'000;
  /// Slices of the aggregation state (`--slice-count`, 1..65536, 1024).
  std::uint32_t slice_count = 1024;
  /// Messages the consumer asks for per pull; a push consumer may have 16 times as many
  /// unacknowledged (`--fetch`, 1..10000, 64).
  std::uint32_t fetch = 64;
  /// Pull consumer (`--consumer pull`) or push consumer (`--consumer push`, default: no
  /// pull request per batch of messages, so the lower latency of the two).
  bool pull = false;
  /// How long a publish waits for its JetStream ack before it is published again
  /// (`--publish-timeout`, 100ms..60s, 1s; with `--retry-timeout 0` it fails instead).
  std::chrono::milliseconds publish_timeout{1'000};
  /// How long the server waits for the consumer's ack of a delivered message before
  /// delivering it again (the consumer's AckWait; `--ack-wait`, 1s..10m, 30s:
  /// JetStream's default).
  std::chrono::milliseconds ack_wait{30'000};
  /// Failure experiment: SIGKILL one launched nats-server this long after sending
  /// started (`--kill-at`, 100ms..24h; 0 = none, the default). Needs launched servers.
  std::chrono::milliseconds kill_at{0};
  /// Which server `--kill-at` kills (`--kill-server`: stream-leader (default),
  /// consumer-leader, or 1..N for server nN).
  kill_target kill = kill_target::stream_leader;
  std::uint32_t kill_index = 0;
  /// `--help` was given.
  bool help = false;
};

/// Parses and validates the arguments (without the program name).
result<nats_options> parse_nats_options(const std::vector<std::string_view>& args);

/// The text of `--help`.
std::string nats_usage();

} // namespace tether::tools::nats
