#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <sys/types.h>
#include <vector>

namespace tether::tools::nats {

/// Ports of one nats-server.
struct server_ports {
  std::uint16_t client = 0;
  std::uint16_t cluster = 0;
};

/// What to launch.
struct cluster_config {
  /// Number of servers (1..9); more than one form a cluster with routes between all.
  std::uint32_t servers = 3;
  /// 0: free loopback ports; P: server i (from 0) listens on P + i for clients and on
  /// P + 10 + i for routes.
  std::uint16_t base_port = 0;
  /// Directory under which the run's own directory (configs, logs, JetStream stores) is
  /// created; empty: $TMPDIR, else /tmp.
  std::string parent_dir;
  /// The nats-server executable (looked up in PATH without a slash).
  std::string binary = "nats-server";
  /// Keep the run's directory after stopping (for reading the logs).
  bool keep_dir = false;
  /// How long the client ports may take to accept connections.
  std::chrono::milliseconds start_timeout{10'000};
};

/// The configuration file of server `index` (from 0) of a cluster with `ports`:
/// loopback listeners, JetStream with its store in `store_dir`, and with more than one
/// server a cluster block routing to every server (a server ignores the route to itself).
std::string server_config(std::uint32_t index, const std::vector<server_ports>& ports,
                          const std::string& store_dir);

/// Ports for `servers` servers: from `base_port` as documented in `cluster_config`, or
/// free loopback ports (all held open at once while choosing, so they are distinct).
/// Returns an empty vector when no free ports can be had.
std::vector<server_ports> choose_ports(std::uint32_t servers, std::uint16_t base_port);

/// A local nats-server cluster for one benchmark run: own directory, own ports, own
/// processes, which it stops (SIGTERM, then SIGKILL after 5 s) and reaps on `stop` or
/// destruction. The servers run in their own process group, so that a Ctrl-C at the
/// terminal reaches only the benchmark, which then stops them in order; and each gets
/// SIGKILL from the kernel if the benchmark dies first (PR_SET_PDEATHSIG), so none
/// outlives it.
/// Thread safety: none; one thread starts and stops it.
class nats_cluster {
public:
  explicit nats_cluster(cluster_config cfg);
  ~nats_cluster();

  nats_cluster(const nats_cluster&) = delete;
  nats_cluster& operator=(const nats_cluster&) = delete;

  /// Creates the directory, writes the configs, starts the servers and waits until
  /// every client port accepts connections. Returns an empty string on success, else
  /// what failed (the servers started so far are stopped again).
  std::string start();

  /// Stops every server still running and removes the directory unless kept.
  void stop();

  /// Sends `sig` to server `index` (for failure experiments); false if it is not running.
  bool signal(std::uint32_t index, int sig);

  /// `nats://127.0.0.1:PORT` of every server.
  std::vector<std::string> urls() const;

  const std::string& dir() const noexcept {
    return dir_;
  }

  /// The last `lines` lines of server `index`'s log.
  std::string log_tail(std::uint32_t index, std::size_t lines = 10) const;

private:
  std::string spawn(std::uint32_t index);
  bool wait_ports(std::chrono::steady_clock::time_point deadline);

  cluster_config cfg_;
  std::vector<server_ports> ports_;
  std::vector<pid_t> pids_;
  std::string dir_;
};

} // namespace tether::tools::nats
