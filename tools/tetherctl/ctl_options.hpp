#pragma once

#include "common/host_port.hpp"
#include "common/result.hpp"
#include "common/tls_client.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tether::tools::ctl {

/// Environment variable naming the default server.
inline constexpr const char* server_env_var = "TETHER_SERVER";

/// Environment variable holding the default token for `watch`.
inline constexpr const char* token_env_var = "TETHER_TOKEN";

/// Most keys one `watch` subscribes to.
inline constexpr std::size_t max_watch_keys = 1000;

/// Bounds of `--timeout-ms`.
inline constexpr std::chrono::milliseconds min_timeout{1};
inline constexpr std::chrono::milliseconds max_timeout{600'000};
inline constexpr std::chrono::milliseconds default_timeout{5'000};

/// Least deadline of `drain`, `move` and `rebalance`: the node answers them only when the
/// leader has finished moving the slices, which can take seconds. A larger `--timeout-ms`
/// applies as given.
inline constexpr std::chrono::milliseconds min_admin_timeout{120'000};

/// Everything `tetherctl` takes from its command line and environment.
struct ctl_options {
  /// Node to ask: `--server`, else `$TETHER_SERVER`, else 127.0.0.1:7480;
  /// `https://HOST:PORT` (or `wss://`) asks over TLS.
  host_port server{"127.0.0.1", default_tether_port};
  /// What a TLS connection trusts and presents: `--ca FILE` (default: the system's
  /// CAs), `--cert FILE` and `--key FILE` (a client certificate).
  tls_client_options tls;
  /// Print response bodies as received instead of tables.
  bool json = false;
  /// Deadline for the whole request (resolve, connect, send, receive).
  std::chrono::milliseconds timeout = default_timeout;
  /// `--help` was given; nothing else is validated then.
  bool help = false;
  /// Token for the stream's hello (`watch` only; `--token`, else `$TETHER_TOKEN`).
  std::string token;
  /// File whose first line is the token (`--token-file`); read by the caller, it
  /// takes precedence over `token`.
  std::string token_file;
  /// `watch` stops after this many window closes; 0 = until interrupted (`--windows`).
  std::uint64_t windows = 0;
  /// One of nodes, directory, where, series, health, watch, drain, move, rebalance.
  std::string command;
  /// The command's arguments (the KEY for where and series, the KEYs for watch, the NODE
  /// for drain, the SLICE and NODE for move).
  std::vector<std::string> args;
};

/// Parses a slice id as `move` takes it: decimal digits only, within 64 bits.
result<std::uint64_t> parse_slice_id(std::string_view text);

/// Parses and validates `tetherctl`'s arguments (without the program name).
/// `env_server` and `env_token` are the values of `$TETHER_SERVER` and `$TETHER_TOKEN`,
/// or null. Failures are usage errors.
result<ctl_options> parse_ctl_options(const std::vector<std::string_view>& args,
                                      const char* env_server,
                                      const char* env_token = nullptr);

/// The usage text printed by `--help` and after usage errors.
std::string ctl_usage();

} // namespace tether::tools::ctl
