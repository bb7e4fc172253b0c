#pragma once

#include "tetherctl/ctl_options.hpp"
#include "tetherctl/http_client.hpp"

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

/// Performs one GET of a request target (path and query) against the configured server.
using http_fetch = std::function<result<http_response>(const std::string& target)>;

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
/// percent-encoded. Precondition: `opts.command` is one of these four.
std::string target_for(const ctl_options& opts);

/// Runs the command in `opts` through `fetch` and renders the outcome. Never throws for
/// server or transport problems; they become exit codes and messages. `watch` is not an
/// HTTP command: see `run_watch`.
command_output run_command(const ctl_options& opts, const http_fetch& fetch);

} // namespace tether::tools::ctl
