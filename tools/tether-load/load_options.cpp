#include "load_options.hpp"

#include "common/arg_parser.hpp"
#include "tether-load/send_schedule.hpp"
#include "tether-load/zipf_sampler.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include <CLI/CLI.hpp>

namespace tether::tools::load {

using namespace std::chrono_literals;

namespace {

std::string fixed_text(double value) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", value);
  return buf;
}

const std::vector<option_spec>& specs() {
  static const std::vector<option_spec> result{
    {"server", true, "HOST:PORT[,...]",
     "node(s) to write to; connection c uses the (c % n)-th; wss://HOST:PORT for TLS "
     "(default 127.0.0.1:7480)"},
    {"connections", true, "N", "WebSocket connections (1..4096, default 4)"},
    {"batch", true, "N", "samples per write batch (1..1000000, default 1000)"},
    {"series", true, "N", "distinct series over all connections (1..100M, default 10000)"},
    {"metrics", true, "M",
     "series i is metric tether_load_<i % M>_total (0..100000, default 0: one name)"},
    {"groups", true, "G", "add label group=<(i / max(M,1)) % G> (0..100M, default 0: none)"},
    {"keys", true, "DIST",
     "uniform (each connection cycles through its ids) or zipf (default uniform)"},
    {"zipf-s", true, "S", "zipf exponent: P(id i) ~ (i+1)^-S (0..10, default 1)"},
    {"seed", true, "N", "seed of the key draws, same seed = same keys (default 1)"},
    {"fold-series", false, "",
     "the node's rules drop the series label (without: [series]); for --visible-keys"
     " and --routed"},
    {"routed", false, "",
     "send every sample to its primary's node: one connection per producer and node"},
    {"visible-keys", true, "N",
     "measure write-to-visible on N output series by queries (0..64, default 0: off)"},
    {"visible-poll", true, "D", "least time between queries of one output (0..1s, default 1ms)"},
    {"duration", true, "D", "stop sending after D: 10, 2.5s, 500ms, 1m (100ms..24h, default 10s)"},
    {"warmup", true, "D",
     "leave the acks of batches sent in the first D out of the ack latency figures;"
     " part of --duration (0..60s, default 0)"},
    {"samples", true, "N", "stop sending after N samples in total (default: no limit)"},
    {"rate", true, "N",
     "open loop: N samples/s over all connections, e.g. 50k (default 0: closed loop)"},
    {"inflight", true, "N", "unacknowledged batches per connection (1..1024, default 8)"},
    {"kind", true, "KIND", "counter (delta 1 per sample) or gauge (default counter)"},
    {"producer", true, "PREFIX", "producer id prefix (default tether-load)"},
    {"token", true, "TOKEN", "token for the hello, if the node requires one"},
    {"token-file", true, "PATH", "read the hello's token from the first line of PATH"},
    {"ca", true, "FILE", "wss:// servers: trust the CA certificate(s) in FILE (PEM) "
                         "instead of the system's"},
    {"cert", true, "FILE", "wss:// servers: present this client certificate (PEM)"},
    {"key", true, "FILE", "the private key of --cert (PEM)"},
    {"threads", true, "N", "I/O threads (1..64, default 1)"},
    {"connect-timeout", true, "D", "bound on connect, handshake and welcome (default 5s)"},
    {"drain-timeout", true, "D", "wait for outstanding acks after sending (0..60s, default 5s)"},
    {"retry-timeout", true, "D",
     "retry a batch after UNAVAILABLE or a lost connection (on the next server) for up to D"
     " (0: never; 0..10m, default 30s)"},
    {"max-frame-bytes", true, "N", "largest server frame accepted (default 16M)"},
    {"json", false, "", "print the final report as one JSON object"},
    {"quiet", false, "", "no progress lines on stderr"},
    {"help", false, "", "show this help"},
  };
  return result;
}

/// Applies an integer option if present.
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

bool apply_duration(const parsed_args& args, std::string_view name,
                    std::chrono::milliseconds min, std::chrono::milliseconds max,
                    std::chrono::milliseconds& field, std::string& error) {
  auto text = args.get(name);
  if (!text)
    return true;
  auto value = parse_duration(*text, name, min, max);
  if (!value) {
    error = value.error();
    return false;
  }
  field = *value;
  return true;
}

/// Parses a finite decimal number in [min, max].
bool apply_real(const parsed_args& args, std::string_view name, double min, double max,
                double& field, std::string& error) {
  auto text = args.get(name);
  if (!text)
    return true;
  const char* begin = text->c_str();
  char* end = nullptr;
  errno = 0;
  double value = std::strtod(begin, &end);
  if (text->empty() || end != begin + text->size() || errno != 0 || !std::isfinite(value)
      || value < min || value > max) {
    error = "invalid value '" + *text + "' for --" + std::string{name} + ": expected a number in ["
            + fixed_text(min) + ", " + fixed_text(max) + "]";
    return false;
  }
  field = value;
  return true;
}

bool valid_producer(std::string_view text) {
  if (text.empty() || text.size() > 64)
    return false;
  for (char c : text) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '.' || c == '_' || c == '-';
    if (!ok)
      return false;
  }
  return true;
}

} // namespace

std::string_view to_string(sample_kind kind) {
  return kind == sample_kind::counter ? "counter" : "gauge";
}

std::string_view to_string(key_distribution keys) {
  return keys == key_distribution::uniform ? "uniform" : "zipf";
}

namespace {

/// Declares tether-load's options and help text on `app`.
void setup(CLI::App& app) {
  app.name("tether-load");
  app.description(
    "Streams write batches to a Tether node over N WebSocket connections\n"
    "(ws://SERVER/v1/stream), keeps up to --inflight batches unacknowledged per\n"
    "connection, and reports throughput and write-to-ack latency.\n"
    "Sending stops at --duration or --samples, whichever comes first.\n"
    "\n"
    "With --rate, batches are sent on a fixed schedule (open loop) instead of as soon\n"
    "as acks make room; a batch held back by a full window is sent late, and its\n"
    "latency counts from its scheduled time.\n"
    "\n"
    "Series ids 0..N-1 (--series) are dealt over the connections. Counters are\n"
    "tether_load_total{series=\"ID\"} (delta 1), gauges tether_load_value{...}. With\n"
    "--metrics M the name is tether_load_<ID % M>_total (_value); with --groups G every\n"
    "sample also has group=\"<(ID / max(M,1)) % G>\", so a rule dropping the series\n"
    "label (without: [series]) folds the ids into max(M,1) * G output series.\n"
    "With --keys zipf every sample draws its id from a Zipf distribution over all\n"
    "ids instead (P(id i) ~ (i+1)^-S with --zipf-s S; id 0 is the hottest).\n"
    "\n"
    "With --visible-keys N, one more connection queries N output series (spread over\n"
    "the outputs, see --fold-series) every --visible-poll and reports write-to-visible\n"
    "latency: the time from a batch's send until a query answer shows the output's\n"
    "running count at or above all samples written to it up to that batch.\n"
    "\n"
    "With --routed (a cluster), tether-load reads the slice table of the first\n"
    "--server (GET /v1/directory, /v1/nodes) and each of the --connections producers\n"
    "opens one connection per node, with its own producer id, that writes only the\n"
    "series whose output key's slice that node leads (docs/protocol.md section 6.2);\n"
    "each gets --inflight / nodes (rounded up) batches in flight and, with --rate, its\n"
    "share of the producer's rate. The table is read once: samples of a slice that\n"
    "moved later are forwarded by the node they reach.");
  add_options(app, specs());
  app.footer("Exit codes: 0 every batch acknowledged and no errors, 1 otherwise, 2 usage error.");
}

} // namespace

std::string load_usage() {
  CLI::App app;
  setup(app);
  return app.help();
}

const std::vector<option_spec>& load_option_specs() {
  return specs();
}

result<load_options> parse_load_options(const std::vector<std::string_view>& args) {
  CLI::App app;
  setup(app);
  auto parsed = parse_args(app, args, specs());
  if (!parsed)
    return fail(parsed.error());
  if (parsed->has("help")) {
    load_options out;
    out.help = true;
    return out;
  }
  return load_options_from(*parsed);
}

bool uses_tls(const load_options& opts) {
  for (const auto& s : opts.servers)
    if (s.tls)
      return true;
  return false;
}

result<load_options> load_options_from(const parsed_args& args) {
  auto parsed = &args;
  load_options out;
  out.help = parsed->has("help");
  if (auto server = parsed->get("server")) {
    out.servers.clear();
    std::string_view rest = *server;
    for (;;) {
      auto comma = rest.find(',');
      auto part = rest.substr(0, comma);
      auto hp = parse_server(part);
      if (!hp)
        return fail(hp.error());
      out.servers.push_back(std::move(*hp));
      if (comma == std::string_view::npos)
        break;
      rest.remove_prefix(comma + 1);
    }
    out.server = out.servers.front();
    for (const auto& s : out.servers)
      if (s.tls != out.server.tls)
        return fail("--server: give every address with wss:// (TLS) or none of them");
  }
  std::string error;
  bool ok = apply_count(*parsed, "connections", 1, 4096, out.connections, error)
            && apply_count(*parsed, "batch", 1, 1'000'000, out.batch, error)
            && apply_count(*parsed, "series", 1, 100'000'000, out.series, error)
            && apply_count(*parsed, "metrics", 0, 100'000, out.metrics, error)
            && apply_count(*parsed, "groups", 0, 100'000'000, out.groups, error)
            && apply_count(*parsed, "visible-keys", 0, 64, out.visible_keys, error)
            && apply_duration(*parsed, "visible-poll", 0ms, 1s, out.visible_poll, error)
            && apply_count(*parsed, "seed", 0, std::numeric_limits<std::uint64_t>::max(), out.seed, error)
            && apply_real(*parsed, "zipf-s", 0.0, zipf_sampler::max_exponent, out.zipf_s, error)
            && apply_count(*parsed, "samples", 0, 1'000'000'000'000'000ULL, out.samples, error)
            && apply_count(*parsed, "rate", 0, send_schedule::max_rate, out.rate, error)
            && apply_count(*parsed, "inflight", 1, 1024, out.inflight, error)
            && apply_count(*parsed, "threads", 1, 64, out.threads, error)
            && apply_count(*parsed, "max-frame-bytes", 1024, 1ULL << 30, out.max_frame_bytes,
                           error)
            && apply_duration(*parsed, "duration", 100ms, 24h, out.duration, error)
            && apply_duration(*parsed, "warmup", 0ms, 60s, out.warmup, error)
            && apply_duration(*parsed, "connect-timeout", 100ms, 60s, out.connect_timeout,
                              error)
            && apply_duration(*parsed, "drain-timeout", 0ms, 60s, out.drain_timeout, error)
            && apply_duration(*parsed, "retry-timeout", 0ms, 600s, out.retry_timeout, error);
  if (!ok)
    return fail(error);
  if (out.warmup >= out.duration)
    return fail("--warmup must be shorter than --duration, which includes it");
  if (auto kind = parsed->get("kind")) {
    if (*kind == "counter")
      out.kind = sample_kind::counter;
    else if (*kind == "gauge")
      out.kind = sample_kind::gauge;
    else
      return fail("invalid value '" + *kind + "' for --kind: expected counter or gauge");
  }
  if (auto keys = parsed->get("keys")) {
    if (*keys == "uniform")
      out.keys = key_distribution::uniform;
    else if (*keys == "zipf")
      out.keys = key_distribution::zipf;
    else
      return fail("invalid value '" + *keys + "' for --keys: expected uniform or zipf");
  }
  if (auto producer = parsed->get("producer")) {
    if (!valid_producer(*producer))
      return fail("invalid value '" + *producer
                  + "' for --producer: 1..64 characters of A-Z a-z 0-9 . _ -");
    out.producer = *producer;
  }
  if (auto token = parsed->get("token"))
    out.token = *token;
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
  bool tls_files = !out.tls.ca_file.empty() || !out.tls.certificate.empty();
  if (tls_files && !uses_tls(out))
    return fail("--ca, --cert and --key apply to TLS servers only: give them as "
                "wss://HOST:PORT");
  out.fold_series = parsed->has("fold-series");
  out.routed = parsed->has("routed");
  out.json = parsed->has("json");
  out.quiet = parsed->has("quiet");
  return out;
}

} // namespace tether::tools::load
