#pragma once

#include "tetherctl/ctl_options.hpp"
#include "tetherctl/http_client.hpp"

#include <chrono>
#include <functional>
#include <string>

namespace tether::tools::ctl {

/// Process exit codes of `tetherctl`.
enum exit_code : int {
  exit_ok = 0,
  /// The server answered with an error status or an unusable body.
  exit_server_error = 1,
  exit_usage = 2,
  /// The server could not be reached or did not answer in time.
  exit_unreachable = 3,
};

/// One request of a command: method, target (path and query) and the deadline for it.
struct http_request {
  http_method method = http_method::get;
  std::string target;
  std::chrono::milliseconds timeout{default_timeout};
};

/// Performs one request against the configured server.
using http_fetch = std::function<result<http_response>(const http_request& request)>;

/// What a command prints and how the process ends.
struct command_output {
  int exit_code = exit_ok;
  /// For stdout.
  std::string out;
  /// For stderr.
  std::string err;
};

/// The request target for a command that asks one endpoint: `/v1/nodes`,
/// `/v1/directory`, `/v1/where?key=...` or `/v1/series?key=...` with the key
/// percent-encoded, or for the admin commands `/v1/admin/drain?node=...`,
/// `/v1/admin/move?slice=...&node=...` and `/v1/admin/rebalance` with the values
/// percent-encoded. Precondition: `opts.command` is one of these seven and its arguments
/// are valid (as `parse_ctl_options` checks).
std::string target_for(const ctl_options& opts);

/// The whole request for such a command: GET with `opts.timeout`, or for the admin
/// commands POST with at least `min_admin_timeout`.
http_request request_for(const ctl_options& opts);

/// Runs the command in `opts` through `fetch` and renders the outcome. Never throws for
/// server or transport problems; they become exit codes and messages. `watch` is not an
/// HTTP command: see `run_watch`.
command_output run_command(const ctl_options& opts, const http_fetch& fetch);

} // namespace tether::tools::ctl
