#include "ctl_options.hpp"

#include "common/arg_parser.hpp"

#include <cstdint>

namespace tether::tools::ctl {

namespace {

const std::vector<option_spec>& specs() {
  static const std::vector<option_spec> result{
    {"server", true, "HOST:PORT",
     "node to ask (default: $TETHER_SERVER, else 127.0.0.1:7480)"},
    {"json", false, "", "print the server's JSON body as received"},
    {"timeout-ms", true, "N",
     "deadline for the request, or for watch's setup, in ms (default 5000, 1..600000)"},
    {"windows", true, "N", "watch: stop after N window closes (default 0: until Ctrl-C)"},
    {"token", true, "TOKEN",
     "token sent as Authorization: Bearer and in watch's hello (default $TETHER_TOKEN)"},
    {"token-file", true, "PATH", "read the token from the first line of PATH"},
    {"help", false, "", "show this help"},
  };
  return result;
}

struct command_spec {
  std::string_view name;
  size_t min_args;
  size_t max_args;
  /// The arguments as the usage error names them.
  std::string_view arg_names;
};

constexpr command_spec commands[] = {
  {"nodes", 0, 0, ""},
  {"directory", 0, 0, ""},
  {"where", 1, 1, "exactly one KEY argument"},
  {"series", 1, 1, "exactly one KEY argument"},
  {"health", 0, 0, ""},
  {"watch", 1, max_watch_keys, ""},
  {"drain", 1, 1, "exactly one NODE argument"},
  {"move", 2, 2, "exactly two arguments, SLICE and NODE"},
  {"rebalance", 0, 0, ""},
};

} // namespace

std::string ctl_usage() {
  return "usage: tetherctl [OPTIONS] COMMAND [ARGS]\n"
         "\n"
         "Commands:\n"
         "  nodes        list the cluster's nodes with their load\n"
         "  directory    show the slice directory as ranges and per-node counts\n"
         "  where KEY    show the slice, epoch and replicas that own a series key\n"
         "  series KEY   show the aggregation state of a series\n"
         "  health       check /healthz and /readyz\n"
         "  watch KEY... subscribe to series and print their state at every window close\n"
         "  drain NODE   move the slices NODE serves to other nodes\n"
         "  move SLICE NODE\n"
         "               move slice SLICE (a number) to NODE\n"
         "  rebalance    rebalance the slices across the nodes\n"
         "\n"
         "Options:\n"
         + format_option_help(specs())
         + "\n"
           "KEY is a series key such as 'http_requests_total{code=\"200\"}'; quote it.\n"
           "drain, move and rebalance go to the directory leader through the node asked and\n"
           "answer when the moves are done; they wait at least 120000 ms.\n"
           "Exit codes: 0 ok, 1 the server reported an error, 2 usage error,\n"
           "3 cannot reach the server.\n";
}

result<std::uint64_t> parse_slice_id(std::string_view text) {
  auto bad = [&] {
    return fail("SLICE must be a non-negative integer, not '" + std::string{text} + "'");
  };
  if (text.empty())
    return bad();
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return bad();
    auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10)
      return bad();
    value = value * 10 + digit;
  }
  return value;
}

result<ctl_options> parse_ctl_options(const std::vector<std::string_view>& args,
                                      const char* env_server, const char* env_token) {
  auto parsed = parse_args(args, specs());
  if (!parsed)
    return fail(parsed.error());
  ctl_options out;
  if (parsed->has("help")) {
    out.help = true;
    return out;
  }
  out.json = parsed->has("json");
  if (auto server = parsed->get("server")) {
    auto hp = parse_host_port(*server);
    if (!hp)
      return fail(hp.error());
    out.server = std::move(*hp);
  } else if (env_server != nullptr && *env_server != '\0') {
    auto hp = parse_host_port(env_server);
    if (!hp)
      return fail(hp.error() + " (from $" + server_env_var + ")");
    out.server = std::move(*hp);
  }
  if (auto timeout = parsed->get("timeout-ms")) {
    auto ms = parse_count(*timeout, "timeout-ms", static_cast<std::uint64_t>(min_timeout.count()),
                          static_cast<std::uint64_t>(max_timeout.count()));
    if (!ms)
      return fail(ms.error());
    out.timeout = std::chrono::milliseconds{static_cast<std::int64_t>(*ms)};
  }
  if (auto windows = parsed->get("windows")) {
    auto n = parse_count(*windows, "windows", 0, 1'000'000);
    if (!n)
      return fail(n.error());
    out.windows = *n;
  }
  if (auto file = parsed->get("token-file"))
    out.token_file = *file;
  if (auto token = parsed->get("token"))
    out.token = *token;
  else if (env_token != nullptr)
    out.token = env_token;
  auto& pos = parsed->positional;
  if (pos.empty())
    return fail("missing COMMAND");
  out.command = pos.front();
  out.args.assign(pos.begin() + 1, pos.end());
  for (const auto& cmd : commands) {
    if (cmd.name != out.command)
      continue;
    if (out.args.size() < cmd.min_args || out.args.size() > cmd.max_args) {
      if (cmd.max_args == 0)
        return fail("'" + out.command + "' takes no arguments");
      if (!cmd.arg_names.empty())
        return fail("'" + out.command + "' takes " + std::string{cmd.arg_names});
      return fail("'" + out.command + "' takes 1.." + std::to_string(cmd.max_args)
                  + " KEY arguments");
    }
    if (out.command == "drain" || out.command == "move") {
      if (out.args.back().empty())
        return fail("NODE must not be empty");
      if (out.command == "move")
        if (auto slice = parse_slice_id(out.args.front()); !slice)
          return fail(slice.error());
      return out;
    }
    for (const auto& arg : out.args)
      if (arg.empty())
        return fail("KEY must not be empty");
    return out;
  }
  return fail("unknown command '" + out.command + "'");
}

} // namespace tether::tools::ctl
