// The node's options, declared once: `node_option_table` drives CAF's config
// (`tether::configure`), `read_node_options`, `check` and the options table of
// docs/operations.md (`tetherd --print-options-markdown`).

#include "tether/options.hpp"

#include <stdexcept>

#include <caf/actor_system_config.hpp>

#include "events/event_log.hpp"
#include "node/cluster_tls.hpp"
#include "series/dedup_window.hpp"

namespace tether {

option_table node_option_table(node_options& o) {
  auto& l = o.limits;
  return {
    {"name", &o.name,
     "stable member name; a restarted node with the same name is the same member",
     in(1, 128)},
    {"host", &o.host, "address the gateway binds"},
    {"port", &o.port, "HTTP and WebSocket port; 0 picks a free one"},
    {"slice-count", &o.slice_count,
     "slices of the key space; fixed when a cluster is created", in(1, 1u << 16)},
    {"shards", &o.shards, "slice-hosting actors on this node; 0 = one per hardware thread",
     in(0, 1024)},
    {"io-threads", &o.io_threads, "gateway I/O threads (decoding and validation run there)",
     in(1, 256)},
    {"request-timeout-ms", &o.request_timeout_ms,
     "timeout of every request between actors; a write that times out is answered "
     "`UNAVAILABLE` (retryable)",
     in(10, 600000)},
    {"window-ms", &o.window_ms,
     "window length for series no rule matches (docs/aggregation.md)", in(10, 86400000)},
    {"lateness-ms", &o.lateness_ms,
     "a window closes this long after its end; later samples are late", in(0, 86400000)},
    {"staleness-ms", &o.staleness_ms,
     "cumulative inputs (and tracked inputs) quiet this long are forgotten",
     in(1000, 86400000)},
    {"max-future-ms", &l.max_future_ms,
     "samples further ahead of the node's clock fail their batch", in(0, 86400000)},
    {"sketch-accuracy", &o.sketch_accuracy, "relative accuracy of histogram quantiles",
     in_real(1e-6, 0.1)},
    {"rules-file", &o.rules_file,
     "JSON aggregation rules; invalid rules stop the start with exit code 2"},
    {"remote-write-url", &o.remote_write_url,
     "send every closed window to this Prometheus remote-write URL (`http://` only)"},
    {"log-level", &o.log_level,
     "cluster events written to standard error: `info` (every event), `warn` (failures, "
     "fences, failovers, refusals only) or `off`; the dashboard shows every event either "
     "way (section \"Reading the log\")"},
    {"auth-token", &o.auth_token,
     "a single token with the `admin` role and any producer id, on every endpoint as a "
     "tokens-file entry would be (kept for existing setups; prefer a tokens file)"},
    {"max-sequence-jump", &l.max_sequence_jump,
     "a write whose sequence is more than this above its producer's highest on a slice "
     "is refused with `SEQUENCE_JUMP`: that slice applies nothing of it, other slices' "
     "parts of the batch may be applied (docs/protocol.md section 6)",
     in(1u << 16)},
    {"producer-idle-ms", &l.producer_idle_ms,
     "a producer that wrote nothing to a slice for this long loses its dedup entry "
     "there: a write it retries after that may count twice (docs/protocol.md section 6); "
     "the same on every node of a cluster",
     in(1000, uint64_t{1} << 40)},
    {"max-producers-per-slice", &l.max_producers_per_slice,
     "dedup entries a slice keeps; a new producer beyond it takes the place of the one "
     "idle longest; the same on every node of a cluster",
     in(16, 1u << 20)},
    {"max-series", &l.max_series,
     "output series the slices this node leads may hold in all (about 500 bytes each, "
     "more with histograms); a write range that would create more is refused with "
     "`INPUT_LIMIT` and its slice changes nothing; `0` for no bound",
     in(0, uint64_t{1} << 40)},
    {"max-frame-bytes", &l.max_frame_bytes,
     "largest WebSocket message; larger ones are discarded and answered "
     "`FRAME_TOO_LARGE`",
     in(1024, 64u << 20)},
    {"max-samples-per-batch", &l.max_samples_per_batch, "samples per write",
     in(1, 1000000)},
    {"max-labels-per-sample", &l.max_labels_per_sample,
     "labels per sample (empty values do not count); a sample or key may carry at most "
     "twice as many labels as sent, empty-valued ones included, and never fewer than 64",
     in(0, 1024)},
    {"max-key-bytes", &l.max_key_bytes, "bytes of a canonical series key", in(16, 65536)},
    // A client retries only unacknowledged batches: they must fit the dedup window.
    {"max-inflight-batches", &l.max_inflight_batches,
     "unacknowledged writes per connection before the node stops reading it; at most "
     "the dedup window",
     in(1, series::dedup_window::span)},
    {"idle-timeout-ms", &l.idle_timeout_ms,
     "a connection that sends nothing for this long is closed", in(100, 86400000)},
    {"cluster-port", &o.cluster_port,
     "port of node-to-node traffic (CAF's BASP); `0` = a standalone node"},
    {"cluster-host", &o.cluster_host, "address node-to-node traffic binds", {}, "`host`"},
    {"advertise-host", &o.advertise_host,
     "host name other nodes and clients reach this node at (set it when binding "
     "`0.0.0.0`, e.g. to a pod's DNS name)",
     {},
     "the bind addresses"},
    {"advertise-cluster-port", &o.advertise_cluster_port,
     "cluster port other nodes dial to reach this node, when a port forward or proxy "
     "sits in front of `cluster-port`; `0` = `cluster-port`"},
    {"seeds", &o.seeds,
     "`[\"HOST:PORT\", ...]` cluster addresses to contact; the directory members' are "
     "enough"},
    {"directory-members", &o.directory_members,
     "names of the 1, 3 or 5 nodes that run the Raft directory; the same list in the "
     "same order on every node; required with `cluster-port`",
     one_of({0, 1, 3, 5})},
    {"data-dir", &o.data_dir,
     "durable state of the node (its Raft log under `directory/`); give every node its "
     "own; empty: memory only"},
    {"insecure", &o.insecure,
     "allow a clustered node without node-to-node TLS (`openssl.*`, docs/security.md); "
     "without either a clustered node exits with code 2. A flag: `insecure=true` in a "
     "config file, `--tether.insecure` on the command line"},
    {"replication-factor", &o.replication_factor,
     "replicas per slice, the primary included", in(1, 7)},
    {"heartbeat-ms", &o.heartbeat_ms, "supervisor heartbeat interval", in(10, 60000)},
    {"suspect-ms", &o.suspect_ms,
     "a peer silent this long is shown as suspect; at least 2 heartbeats (`heartbeat-ms`)",
     in(20, 600000)},
    {"max-moves", &o.max_moves, "slices moved concurrently by one rebalance or drain round",
     in(1, 1024)},
    {"balance-tolerance", &o.balance_tolerance,
     "a rebalance brings every node within this fraction of the mean slice count",
     in_real(0, 1)},
  };
}

node_options read_node_options(const caf::actor_system_config& cfg) {
  node_options o;
  if (auto err = read_options(cfg, "tether", node_option_table(o)); !err.empty())
    throw std::invalid_argument(err);
  // Node-to-node TLS is configured by CAF's own openssl.* options.
  o.tls_certificate = cfg.openssl_certificate;
  o.tls_key = cfg.openssl_key;
  o.tls_cafile = cfg.openssl_cafile;
  o.tls_passphrase = cfg.openssl_passphrase;
  return o;
}

namespace {

/// Node-to-node TLS: all three files or none; a cluster without it only when asked
/// for; the files load and the certificate names this node.
std::string check_tls(const node_options& o) {
  auto parts = int{!o.tls_certificate.empty()} + int{!o.tls_key.empty()}
               + int{!o.tls_cafile.empty()};
  if (parts != 0 && parts != 3)
    return "node-to-node TLS needs all of openssl.certificate, openssl.key and "
           "openssl.cafile";
  if (!o.clustered())
    return {};
  if (parts == 0)
    return o.insecure ? std::string{}
                      : "a clustered node needs node-to-node TLS (openssl.certificate, "
                        "openssl.key, openssl.cafile) or tether.insecure to run "
                        "without it (docs/security.md)";
  if (auto err = internal::check_tls_files(o.tls_certificate, o.tls_key, o.tls_cafile,
                                           o.tls_passphrase);
      !err.empty())
    return err;
  return internal::check_certificate_names(o.tls_certificate, o.name);
}

/// The rules between options that no single row can state.
std::string check_relations(const node_options& o) {
  events::log_level level;
  if (!events::parse_log_level(o.log_level, level))
    return "tether.log-level = '" + o.log_level + "' is not one of info, warn, off";
  if (o.suspect_ms < 2 * uint64_t{o.heartbeat_ms})
    return "tether.suspect-ms = " + std::to_string(o.suspect_ms)
           + " is below 2 heartbeats (tether.heartbeat-ms = "
           + std::to_string(o.heartbeat_ms) + ")";
  auto& names = o.directory_members;
  auto dm = names.size();
  for (size_t i = 0; i < dm; ++i)
    for (size_t j = i + 1; j < dm; ++j)
      if (names[i] == names[j])
        return "tether.directory-members names " + names[i] + " twice";
  if (!o.clustered()) {
    if (!o.seeds.empty())
      return "tether.seeds needs tether.cluster-port";
    if (o.advertise_cluster_port != 0)
      return "tether.advertise-cluster-port needs tether.cluster-port";
    if (dm > 1 || (dm == 1 && names[0] != o.name))
      return "tether.directory-members other than this node need tether.cluster-port";
  } else if (dm == 0) {
    return "tether.directory-members must be set when tether.cluster-port is";
  }
  for (auto& seed : o.seeds) {
    auto colon = seed.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == seed.size())
      return "tether.seeds: '" + seed + "' is not HOST:PORT";
  }
  return check_tls(o);
}

} // namespace

std::string check(const node_options& opts) {
  auto copy = opts; // the table points into a struct it may write to
  if (auto err = check_options("tether", node_option_table(copy)); !err.empty())
    return err;
  return check_relations(opts);
}

} // namespace tether
