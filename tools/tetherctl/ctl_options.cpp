#include "ctl_options.hpp"

#include "common/arg_parser.hpp"

#include <cstdint>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>

namespace tether::tools::ctl {

namespace {

const std::vector<option_spec>& specs() {
  static const std::vector<option_spec> result{
    {"server", true, "HOST:PORT",
     "node to ask; https://HOST:PORT for TLS (default: $TETHER_SERVER, else "
     "127.0.0.1:7480)"},
    {"json", false, "", "print the server's JSON body as received"},
    {"timeout-ms", true, "N",
     "deadline for the request, or for watch's setup, in ms (default 5000, 1..600000)"},
    {"windows", true, "N", "watch: stop after N window closes (default 0: until Ctrl-C)"},
    {"token", true, "TOKEN",
     "token sent as Authorization: Bearer and in watch's hello (default $TETHER_TOKEN)"},
    {"token-file", true, "PATH", "read the token from the first line of PATH"},
    {"ca", true, "FILE", "https:// servers: trust the CA certificate(s) in FILE (PEM) "
                         "instead of the system's"},
    {"cert", true, "FILE", "https:// servers: present this client certificate (PEM)"},
    {"key", true, "FILE", "the private key of --cert (PEM)"},
    {"help", false, "", "show this help"},
  };
  return result;
}

/// One positional argument of a command: exactly one, or `min..max` of them.
struct arg_spec {
  const char* name;
  const char* help;
  int min = 1;
  int max = 1;
};

struct command_spec {
  const char* name;
  const char* help;
  std::vector<arg_spec> args;
};

const std::vector<command_spec>& commands() {
  static const std::vector<command_spec> result{
    {"nodes", "list the cluster's nodes with their load", {}},
    {"directory", "show the slice directory as ranges and per-node counts", {}},
    {"where", "show the slice, epoch and replicas that own a series key",
     {{"KEY", "series key"}}},
    {"series", "show the aggregation state of a series", {{"KEY", "series key"}}},
    {"health", "check /healthz and /readyz", {}},
    {"watch", "subscribe to series and print their state at every window close",
     {{"KEY", "series keys", 1, static_cast<int>(max_watch_keys)}}},
    {"drain", "move the slices NODE serves to other nodes", {{"NODE", "node name"}}},
    {"move", "move slice SLICE (a number) to NODE",
     {{"SLICE", "slice id"}, {"NODE", "node name"}}},
    {"rebalance", "rebalance the slices across the nodes", {}},
  };
  return result;
}

/// Lists a command with its arguments in the help, e.g. `move SLICE NODE`.
class command_formatter : public CLI::Formatter {
public:
  std::string make_subcommand(const CLI::App* sub) const override {
    std::string name = sub->get_name();
    for (const auto* opt :
         sub->get_options([](const CLI::Option* o) { return o->get_positional(); })) {
      name += " " + opt->get_name(true);
      if (opt->get_expected_max() > 1)
        name += "...";
    }
    std::stringstream out;
    CLI::detail::format_help(out, name, sub->get_description(), get_column_width());
    return out.str();
  }
};

/// Declares tetherctl's options and commands on `app`.
void setup(CLI::App& app) {
  app.name("tetherctl");
  app.description("The operator's client of a Tether node's HTTP JSON API.");
  auto formatter = std::make_shared<command_formatter>();
  formatter->label("SUBCOMMAND", "COMMAND");
  app.formatter(formatter);
  // Options may follow the command: its subcommand hands them to the parent.
  app.fallthrough();
  add_options(app, specs());
  for (const auto& cmd : commands()) {
    auto* sub = app.add_subcommand(cmd.name, cmd.help)->group("Commands");
    for (const auto& arg : cmd.args)
      sub->add_option(arg.name, arg.help)
        ->required()
        ->expected(arg.min, arg.max)
        ->allow_extra_args(arg.max > 1);
  }
  app.footer("KEY is a series key such as 'http_requests_total{code=\"200\"}'; quote it.\n"
             "drain, move and rebalance go to the directory leader through the node asked\n"
             "and answer when the moves are done; they wait at least 120000 ms.\n"
             "Exit codes: 0 ok, 1 the server reported an error, 2 usage error,\n"
             "3 cannot reach the server.");
}

} // namespace

std::string ctl_usage() {
  CLI::App app;
  setup(app);
  return app.help();
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
  CLI::App app;
  setup(app);
  auto parsed = parse_args(app, args, specs());
  if (!parsed)
    return fail(parsed.error());
  ctl_options out;
  if (parsed->has("help")) {
    out.help = true;
    return out;
  }
  out.json = parsed->has("json");
  if (auto server = parsed->get("server")) {
    auto hp = parse_server(*server);
    if (!hp)
      return fail(hp.error());
    out.server = std::move(*hp);
  } else if (env_server != nullptr && *env_server != '\0') {
    auto hp = parse_server(env_server);
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
  if (auto ca = parsed->get("ca"))
    out.tls.ca_file = *ca;
  if (auto cert = parsed->get("cert"))
    out.tls.certificate = *cert;
  if (auto key = parsed->get("key"))
    out.tls.key = *key;
  if (out.tls.certificate.empty() != out.tls.key.empty())
    return fail("--cert and --key go together");
  if ((!out.tls.ca_file.empty() || !out.tls.certificate.empty()) && !out.server.tls)
    return fail("--ca, --cert and --key apply to TLS servers only: give the server as "
                "https://HOST:PORT");
  if (auto token = parsed->get("token"))
    out.token = *token;
  else if (env_token != nullptr)
    out.token = env_token;
  auto chosen = app.get_subcommands();
  if (chosen.empty())
    return fail("missing COMMAND");
  out.command = chosen.front()->get_name();
  for (const auto* opt :
       chosen.front()->get_options([](const CLI::Option* o) { return o->get_positional(); }))
    for (const auto& value : opt->results())
      out.args.push_back(value);
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

} // namespace tether::tools::ctl
