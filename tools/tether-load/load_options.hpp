#pragma once

#include "common/arg_parser.hpp"
#include "common/host_port.hpp"
#include "common/result.hpp"
#include "common/tls_client.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tether::tools::load {

/// The kind of samples a run writes.
enum class sample_kind { counter, gauge };

/// `counter` or `gauge`.
std::string_view to_string(sample_kind kind);

/// How the samples of a run pick their series.
enum class key_distribution {
  /// Each connection cycles through its share of the ids: every series is written
  /// equally often, in a fixed order.
  uniform,
  /// Every sample draws its id from a Zipf distribution over all ids (id 0 the most
  /// frequent), independently on each connection.
  zipf,
};

/// `uniform` or `zipf`.
std::string_view to_string(key_distribution keys);

/// Everything `tether-load` takes from its command line. Every field has a documented
/// default and bounds, enforced by `parse_load_options`.
struct load_options {
  /// Node to write to (`--server`, default 127.0.0.1:7480): the first of `servers`.
  host_port server{"127.0.0.1", default_tether_port};
  /// Nodes to write to (`--server A,B,...`): connection `c` writes to `servers[c % n]`,
  /// so the gateway work is spread over the nodes of a cluster; the visibility reader
  /// uses the first. Never empty after parsing. `wss://HOST:PORT` (or `https://`)
  /// connects with TLS.
  std::vector<host_port> servers{host_port{"127.0.0.1", default_tether_port}};
  /// WebSocket connections, each with its own producer id (`--connections`, 1..4096, 4).
  std::uint32_t connections = 4;
  /// Samples per write batch (`--batch`, 1..1000000, 1000).
  std::uint32_t batch = 1000;
  /// Distinct series written across all connections (`--series`, 1..100000000, 10000).
  std::uint64_t series = 10'000;
  /// Metric names: 0 = one name for every series (`tether_load_total`, or
  /// `tether_load_value` for gauges); M > 0 = series `i` uses `tether_load_<i % M>_total`
  /// (`_value`) (`--metrics`, 0..100000, 0).
  std::uint32_t metrics = 0;
  /// Groups: 0 = no `group` label; G > 0 = every sample also carries
  /// `group="<(i / max(M, 1)) % G>"`, so dropping `series` folds the series into
  /// `max(M, 1) * G` outputs (`--groups`, 0..100000000, 0).
  std::uint64_t groups = 0;
  /// Key distribution (`--keys`, uniform or zipf, default uniform).
  key_distribution keys = key_distribution::uniform;
  /// Zipf exponent: id `i` is drawn with probability proportional to `(i + 1)^-s`
  /// (`--zipf-s`, 0..10, 1; 0 draws uniformly at random).
  double zipf_s = 1.0;
  /// Seed of the key draws; connection `c` draws from a generator seeded with
  /// (seed, c), so runs with the same seed write the same keys (`--seed`, 1).
  std::uint64_t seed = 1;
  /// The node's rules drop the `series` label of the load's metrics (`without:
  /// ["series"]`), so ids fold into `max(M,1) * max(G,1)` outputs; tells the visibility
  /// reader which output keys to follow (`--fold-series`).
  bool fold_series = false;
  /// Each producer writes every sample to the node leading its output's slice, one
  /// connection per node (`--routed`; docs/protocol.md section 6.2).
  bool routed = false;
  /// Output series whose write-to-visible latency is measured, spread evenly over the
  /// outputs (see `visibility_tracker`); 0 = no measurement (`--visible-keys`, 0..64, 0).
  std::uint32_t visible_keys = 0;
  /// Least time between two queries of one tracked output; 0 = ask again as soon as the
  /// answer is in (`--visible-poll`, 0..1s, 1ms).
  std::chrono::milliseconds visible_poll{1};
  /// Sending stops after this long (`--duration`, 100ms..24h, 10s).
  std::chrono::milliseconds duration{10'000};
  /// Acks of batches sent this early in the run are left out of the ack latency
  /// figures (a cluster that has just become ready); part of `duration`
  /// (`--warmup`, 0..60s, 0).
  std::chrono::milliseconds warmup{0};
  /// Sending stops after this many samples in total; 0 = no limit (`--samples`).
  std::uint64_t samples = 0;
  /// Open-loop target in samples per second over all connections; 0 = closed loop, each
  /// connection sends whenever its in-flight window has room (`--rate`, 0..1G, 0).
  std::uint64_t rate = 0;
  /// Unacknowledged batches allowed per connection (`--inflight`, 1..1024, 8).
  std::uint32_t inflight = 8;
  /// Sample kind (`--kind`, counter or gauge).
  sample_kind kind = sample_kind::counter;
  /// Producer id prefix; ids are PREFIX-RUNID-CONN (`--producer`, 1..64 chars of
  /// `[A-Za-z0-9._-]`, default tether-load).
  std::string producer = "tether-load";
  /// Authentication token sent in the hello (`--token`, default none).
  std::string token;
  /// File whose first line is the token (`--token-file`); the caller reads it and
  /// it takes precedence over `token`.
  std::string token_file;
  /// What TLS connections (`wss://` servers) trust and present: `--ca FILE` (default:
  /// the system's CAs), `--cert FILE` and `--key FILE` (a client certificate).
  tls_client_options tls;
  /// I/O threads running the connections (`--threads`, 1..64, 1).
  std::uint32_t threads = 1;
  /// Bound on connect, WebSocket handshake, hello and welcome (`--connect-timeout`,
  /// 100ms..60s, 5s).
  std::chrono::milliseconds connect_timeout{5'000};
  /// How long to wait for outstanding acks after sending stops (`--drain-timeout`,
  /// 0..60s, 5s).
  std::chrono::milliseconds drain_timeout{5'000};
  /// How long a batch is retried (docs/protocol.md section 6): sent again after
  /// UNAVAILABLE (with a backoff) and, after a lost connection, on a new connection to
  /// the next `--server` with the same producer id; a batch unanswered this long after
  /// its send, or a connection not back within it, fails. 0: no retries, an UNAVAILABLE
  /// fails the batch and a lost connection ends the session (`--retry-timeout`, 0..10m,
  /// 30s).
  std::chrono::milliseconds retry_timeout{30'000};
  /// Largest server frame accepted (`--max-frame-bytes`, 1 KiB..1 GiB, 16 MiB).
  std::uint64_t max_frame_bytes = 16ULL * 1024 * 1024;
  /// Print the final report as one JSON object (`--json`).
  bool json = false;
  /// Suppress the per-second progress lines on stderr (`--quiet`).
  bool quiet = false;
  /// `--help` was given; nothing else is validated then.
  bool help = false;
  /// Error frames and connection errors printed individually; later ones are only
  /// counted (not a command-line option).
  std::uint32_t max_printed_errors = 10;
};

/// Whether any server of `opts` is reached over TLS.
bool uses_tls(const load_options& opts);

/// Parses and validates `tether-load`'s arguments (without the program name). Failures
/// are usage errors.
result<load_options> parse_load_options(const std::vector<std::string_view>& args);

/// The option declarations of `tether-load`, for tools that run the same workload
/// against another system and take a subset of them.
const std::vector<option_spec>& load_option_specs();

/// Validates the `tether-load` options among `args` (parsed against any set of specs
/// that includes them); options that are absent keep their defaults and other options
/// are ignored. Failures are usage errors.
result<load_options> load_options_from(const parsed_args& args);

/// The usage text printed by `--help` and after usage errors.
std::string load_usage();

} // namespace tether::tools::load
