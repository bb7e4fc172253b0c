#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tether/option_table.hpp"

namespace caf {
class actor_system_config;
}

namespace tether {

/// Per-connection and per-batch limits. Every limit is explicit and configurable;
/// the defaults are documented in docs/protocol.md.
struct limits {
  uint32_t max_frame_bytes = 1 << 20;
  uint32_t max_samples_per_batch = 10000;
  uint32_t max_labels_per_sample = 32;
  uint32_t max_key_bytes = 1024;
  uint32_t max_inflight_batches = 64;
  uint32_t idle_timeout_ms = 60000;
  uint32_t max_future_ms = 60000; ///< how far ahead of the node's clock a sample may be
  /// How far a write's sequence may jump above the highest its producer has on a
  /// slice (docs/protocol.md section 6): a bound that keeps one bad write from
  /// making every later write of the producer SEQUENCE_TOO_OLD.
  uint64_t max_sequence_jump = uint64_t{1} << 48;
  /// A producer idle this long on a slice loses its dedup entry there; a slice keeps
  /// at most `max_producers_per_slice` (docs/protocol.md section 6).
  uint64_t producer_idle_ms = 3600000;
  uint32_t max_producers_per_slice = 1024;
  /// Output series the node may lead in all (tether.max-series); a write that
  /// would create more is refused with INPUT_LIMIT. 0: no bound.
  uint64_t max_series = 4000000;
};

/// Everything that shapes one node. Defaults give a single development node.
/// Every field is an option under the `tether.` prefix, declared once with its
/// description and bounds in `node_option_table` (docs/operations.md lists them).
struct node_options {
  std::string name = "tether-0";       ///< stable member name
  std::string host = "127.0.0.1";      ///< address the gateway binds
  uint16_t port = 7480;                ///< gateway port, 0 picks a free one
  uint32_t slice_count = 1024;         ///< fixed when a cluster is created
  uint32_t shards = 0;                 ///< slice-hosting actors; 0 = hardware threads
  uint32_t request_timeout_ms = 5000;  ///< timeout of every request between actors
  uint32_t window_ms = 10000;          ///< default tumbling window length
  uint32_t lateness_ms = 5000;         ///< a window takes samples this long after its end
  uint32_t staleness_ms = 300000;      ///< cumulative inputs quiet this long are forgotten
  double sketch_accuracy = 0.01;       ///< histogram quantile relative accuracy
  std::string rules_file;              ///< JSON rules; empty: no rules
  std::string remote_write_url;        ///< export closed windows here; empty: off
  uint32_t io_threads = 1;             ///< gateway I/O threads
  std::string auth_token;              ///< empty: no authentication
  /// Cluster events written to the log: `info` (all), `warn` (WARN lines only) or
  /// `off`; the dashboard keeps every event either way (docs/operations.md).
  std::string log_level = "info";
  tether::limits limits;

  // -- cluster -----------------------------------------------------------------

  /// Port of node-to-node traffic (CAF's BASP); 0: a standalone node that neither
  /// listens for nor contacts other nodes.
  uint16_t cluster_port = 0;
  std::string cluster_host;              ///< BASP bind address; empty: `host`
  /// The host name other nodes and clients reach this node at, e.g. a pod's DNS
  /// name when the node binds 0.0.0.0; empty: the bind addresses (`host` for the
  /// gateway, `cluster_host` or else `host` for node-to-node traffic).
  std::string advertise_host;
  /// The cluster port other nodes dial to reach this node, when it differs from the
  /// one it listens on (a port forward or a proxy in between); 0: `cluster_port`.
  uint16_t advertise_cluster_port = 0;
  std::vector<std::string> seeds;        ///< HOST:PORT cluster addresses to contact
  /// Names of the members that run the Raft directory (1 or 3). Empty: this node
  /// alone. Every node of a cluster must list the same names in the same order.
  std::vector<std::string> directory_members;
  std::string data_dir;                  ///< durable state (Raft log); empty: memory
  uint32_t replication_factor = 1;       ///< replicas per slice
  uint32_t heartbeat_ms = 100;           ///< supervisor heartbeat interval
  uint32_t suspect_ms = 500;             ///< silence after which a peer is suspected
  uint32_t max_moves = 16;               ///< concurrent slice moves of a rebalance
  double balance_tolerance = 0.10;       ///< rebalance until members are within it

  /// Node-to-node TLS (CAF's OpenSSL module): this node's certificate, its key and
  /// the cluster's CA, from CAF's `openssl.certificate`, `openssl.key` and
  /// `openssl.cafile`. All three or none; the certificate must name the node.
  std::string tls_certificate;
  std::string tls_key;
  std::string tls_cafile;
  std::string tls_passphrase;  ///< `openssl.passphrase` of an encrypted key
  /// Allows a clustered node without node-to-node TLS (`tether.insecure`): any
  /// process that reaches the cluster port can then join.
  bool insecure = false;

  /// Whether node-to-node traffic runs over mutual TLS.
  bool cluster_tls() const noexcept {
    return !tls_certificate.empty();
  }

  /// Whether this node takes part in a cluster (listens for other nodes).
  bool clustered() const noexcept {
    return cluster_port != 0;
  }
};

/// The `tether.*` options of a node: one row per field of `opts` (name, field,
/// description, bounds), the fields pointing into `opts`. Made from a
/// default-constructed struct, it holds the defaults.
option_table node_option_table(node_options& opts);

/// Checks every option against its bounds and the rules between options (e.g.
/// `suspect-ms` at least two heartbeats). Returns an empty string when all hold,
/// otherwise a message naming the first option out of bounds and its bounds.
std::string check(const node_options& opts);

/// Reads `node_options` from a config that `tether::configure` prepared, after it
/// parsed the command line and config file; options not given keep their defaults.
/// Does not check bounds (`check` and `spawn_node` do). Throws std::invalid_argument
/// naming an option whose value does not have the option's type.
node_options read_node_options(const caf::actor_system_config& cfg);

} // namespace tether
