#include "nats_options.hpp"

#include "common/arg_parser.hpp"

#include <algorithm>

#include <CLI/CLI.hpp>

namespace tether::tools::nats {

using namespace std::chrono_literals;

namespace {

/// tether-load options that only make sense against a node.
bool node_only(std::string_view name) {
  return name == "server" || name == "token" || name == "token-file" || name == "ca"
         || name == "cert" || name == "key" || name == "threads" || name == "max-frame-bytes"
         || name == "visible-poll";
}

const std::vector<option_spec>& specs() {
  static const std::vector<option_spec> result = [] {
    std::vector<option_spec> out{
      {"nats-servers", true, "N", "nats-server processes to launch (1..9, default 3)"},
      {"nats-url", true, "URLS", "use these servers (comma separated) instead of launching"},
      {"nats-port", true, "P", "clients on P+i, routes on P+10+i (default 0: free ports)"},
      {"replicas", true, "R", "stream replicas (1..5, default 3)"},
      {"storage", true, "KIND", "stream storage: memory or file (default memory)"},
      {"stream-max-bytes", true, "N", "stream size bound per replica (1M..64G, default 1G)"},
      {"nats-dir", true, "DIR", "parent of the cluster's directory (default $TMPDIR or /tmp)"},
      {"keep-dir", false, "", "keep configs, logs and stores after the run"},
      {"nats-server-bin", true, "PATH", "nats-server executable (default nats-server)"},
      {"ready-timeout", true, "D", "bound on cluster start and stream creation (default 30s)"},
      {"rules-file", true, "F", "aggregation rules, as for tetherd (default none)"},
      {"window-ms", true, "MS", "window of series no rule matches (default 10000)"},
      {"lateness-ms", true, "MS", "window close after end + this (default 5000)"},
      {"slice-count", true, "N", "slices of the aggregation state (default 1024)"},
      {"consumer", true, "MODE", "push or pull consumer, explicit acks (default push)"},
      {"fetch", true, "N", "messages per pull; push: 16 N unacked (1..10000, default 64)"},
      {"publish-timeout", true, "D",
       "publish ack wait before publishing again (100ms..60s, default 1s)"},
      {"ack-wait", true, "D", "consumer AckWait: redelivery after D (1s..10m, default 30s)"},
      {"kill-at", true, "D", "failure experiment: SIGKILL a server D after the start"},
      {"kill-server", true, "WHICH",
       "server --kill-at kills: stream-leader, consumer-leader or 1..N (default stream-leader)"},
    };
    for (const auto& s : load::load_option_specs())
      if (!node_only(s.name))
        out.push_back(s);
    return out;
  }();
  return result;
}

std::vector<std::string> split_urls(const std::string& text) {
  std::vector<std::string> out;
  std::string::size_type pos = 0;
  while (pos <= text.size()) {
    auto comma = text.find(',', pos);
    auto part = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!part.empty())
      out.push_back(part);
    if (comma == std::string::npos)
      break;
    pos = comma + 1;
  }
  return out;
}

template <class T>
bool apply_count(const parsed_args& args, std::string_view name, std::uint64_t min,
                 std::uint64_t max, T& field, std::string& error) {
  auto text = args.get(name);
  if (!text)
    return true;
  auto value = parse_count(*text, name, min, max);
  if (!value) {
    error = value.error();
    return false;
  }
  field = static_cast<T>(*value);
  return true;
}

} // namespace

std::string_view to_string(storage_kind kind) {
  return kind == storage_kind::memory ? "memory" : "file";
}

namespace {

/// Declares the baseline's options (its own and tether-load's) and help on `app`.
void setup(CLI::App& app) {
  app.name("tether-nats-baseline");
  app.description(
    "Runs tether-load's workload through NATS JetStream: launches a cluster of\n"
    "nats-server processes on loopback (or uses --nats-url), creates a stream with\n"
    "--replicas replicas, publishes every batch as one message (the same\n"
    "ClientFrame{write} bytes tether-load sends to a node) and aggregates them in a\n"
    "consumer with Tether's own code (validation, rules, exactly-once by\n"
    "producer and sequence, windows). Write-to-ack is the JetStream publish ack;\n"
    "write-to-visible (--visible-keys) is measured when the consumer has applied the\n"
    "batch, by the same definition as tether-load. Everything it starts is stopped\n"
    "at the end, also on Ctrl-C (twice: without waiting for acks).");
  add_options(app, specs());
  app.footer("Exit codes: 0 every batch acknowledged and applied, 1 otherwise, 2 usage error.");
}

} // namespace

std::string nats_usage() {
  CLI::App app;
  setup(app);
  return app.help();
}

result<nats_options> parse_nats_options(const std::vector<std::string_view>& args) {
  CLI::App app;
  setup(app);
  auto parsed = parse_args(app, args, specs());
  if (!parsed)
    return fail(parsed.error());
  nats_options out;
  if (parsed->has("help")) {
    out.help = true;
    return out;
  }
  auto load = load::load_options_from(*parsed);
  if (!load)
    return fail(load.error());
  out.load = std::move(*load);
  std::string error;
  bool ok = apply_count(*parsed, "nats-servers", 1, 9, out.servers, error)
            && apply_count(*parsed, "nats-port", 0, 65'000, out.port, error)
            && apply_count(*parsed, "replicas", 1, 5, out.replicas, error)
            && apply_count(*parsed, "stream-max-bytes", 1ULL << 20, 64ULL << 30,
                           out.stream_max_bytes, error)
            && apply_count(*parsed, "window-ms", 1, 86'400'000, out.window_ms, error)
            && apply_count(*parsed, "lateness-ms", 0, 3'600'000, out.lateness_ms, error)
            && apply_count(*parsed, "slice-count", 1, 65'536, out.slice_count, error)
            && apply_count(*parsed, "fetch", 1, 10'000, out.fetch, error);
  if (!ok)
    return fail(error);
  if (auto text = parsed->get("ready-timeout")) {
    auto d = parse_duration(*text, "ready-timeout", 1s, 120s);
    if (!d)
      return fail(d.error());
    out.ready_timeout = *d;
  }
  if (auto text = parsed->get("publish-timeout")) {
    auto d = parse_duration(*text, "publish-timeout", 100ms, 60s);
    if (!d)
      return fail(d.error());
    out.publish_timeout = *d;
  }
  if (auto text = parsed->get("ack-wait")) {
    auto d = parse_duration(*text, "ack-wait", 1s, 600s);
    if (!d)
      return fail(d.error());
    out.ack_wait = *d;
  }
  if (auto text = parsed->get("kill-at")) {
    auto d = parse_duration(*text, "kill-at", 0ms, 24h);
    if (!d)
      return fail(d.error());
    out.kill_at = *d;
  }
  if (auto which = parsed->get("kill-server")) {
    if (*which == "stream-leader") {
      out.kill = kill_target::stream_leader;
    } else if (*which == "consumer-leader") {
      out.kill = kill_target::consumer_leader;
    } else {
      auto n = parse_count(*which, "kill-server", 1, 9);
      if (!n)
        return fail("invalid value '" + *which
                    + "' for --kill-server: expected stream-leader, consumer-leader or 1..9");
      out.kill = kill_target::index;
      out.kill_index = static_cast<std::uint32_t>(*n - 1);
    }
  }
  if (auto kind = parsed->get("storage")) {
    if (*kind == "memory")
      out.storage = storage_kind::memory;
    else if (*kind == "file")
      out.storage = storage_kind::file;
    else
      return fail("invalid value '" + *kind + "' for --storage: expected memory or file");
  }
  if (auto mode = parsed->get("consumer")) {
    if (*mode == "pull")
      out.pull = true;
    else if (*mode == "push")
      out.pull = false;
    else
      return fail("invalid value '" + *mode + "' for --consumer: expected push or pull");
  }
  if (auto urls = parsed->get("nats-url")) {
    out.urls = split_urls(*urls);
    if (out.urls.empty())
      return fail("--nats-url needs at least one URL");
  }
  if (out.urls.empty() && out.replicas > out.servers)
    return fail("--replicas " + std::to_string(out.replicas) + " needs at least as many servers (--nats-servers "
                + std::to_string(out.servers) + ")");
  if (out.kill_at.count() > 0 && !out.urls.empty())
    return fail("--kill-at kills a server this run launched: not with --nats-url");
  if (out.kill == kill_target::index && out.kill_index >= out.servers)
    return fail("--kill-server " + std::to_string(out.kill_index + 1) + " but only "
                + std::to_string(out.servers) + " servers (--nats-servers)");
  if (auto dir = parsed->get("nats-dir"))
    out.dir = *dir;
  if (auto bin = parsed->get("nats-server-bin"))
    out.server_binary = *bin;
  if (auto rules = parsed->get("rules-file"))
    out.rules_file = *rules;
  out.keep_dir = parsed->has("keep-dir");
  return out;
}

} // namespace tether::tools::nats
