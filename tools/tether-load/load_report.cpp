#include "load_report.hpp"

#include "tether-load/send_schedule.hpp"
#include "tether-load/visibility_tracker.hpp"

#include <boost/json.hpp>

#include <cmath>
#include <cstdio>

namespace tether::tools::load {

namespace {

double per_second(std::uint64_t amount, double seconds) {
  return seconds > 0.0 ? static_cast<double>(amount) / seconds : 0.0;
}

std::string fixed(double value, int decimals) {
  char buf[64];
  auto n = std::snprintf(buf, sizeof(buf), "%.*f", decimals, value);
  return std::string{buf, static_cast<size_t>(n > 0 ? n : 0)};
}

/// Milliseconds as a JSON number with microsecond resolution.
double ms_value(std::uint64_t nanoseconds) {
  return static_cast<double>(nanoseconds / 1000) / 1000.0;
}

/// Quantiles of the latency spectra in the JSON report: log-spaced towards the tail, so
/// that `1 / (1 - q)` on a log axis spreads them evenly (the plot of compare.sh).
constexpr double spectrum_quantiles[] = {0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999};

std::string line(std::string_view label, const std::string& value) {
  std::string out{label};
  constexpr size_t width = 16;
  if (out.size() < width)
    out.append(width - out.size(), ' ');
  else
    out += ' ';
  return out + value + "\n";
}

/// `--server` as given: the nodes written to, comma separated.
std::string servers_text(const load_options& opts) {
  if (opts.servers.size() <= 1)
    return opts.server.to_string();
  std::string out;
  for (const auto& s : opts.servers)
    out += (out.empty() ? "" : ",") + s.to_string();
  return out;
}

/// The longest of `gaps`, if any.
const activity_timeline::gap* longest(const std::vector<activity_timeline::gap>& gaps) {
  const activity_timeline::gap* out = nullptr;
  for (const auto& g : gaps)
    if (out == nullptr || g.seconds() > out->seconds())
      out = &g;
  return out;
}

std::string gap_text(const activity_timeline::gap& g) {
  return fixed(g.seconds() * 1000.0, 1) + " ms (" + fixed(g.from_s, 3) + " s to "
         + fixed(g.to_s, 3) + " s" + (g.open ? ", until the end" : "") + ")";
}

boost::json::array gaps_json(const std::vector<activity_timeline::gap>& gaps) {
  boost::json::array out;
  for (const auto& g : gaps)
    out.push_back(boost::json::object{{"from_s", std::round(g.from_s * 1e6) / 1e6},
                                      {"to_s", std::round(g.to_s * 1e6) / 1e6},
                                      {"open", g.open}});
  return out;
}

boost::json::array numbers_json(const std::vector<std::uint64_t>& values) {
  boost::json::array out;
  out.reserve(values.size());
  for (auto v : values)
    out.push_back(v);
  return out;
}

} // namespace

void take_visible_timelines(const visibility_tracker& tracker, load_totals& totals) {
  totals.visible_over_time = timeline_data::of(tracker.timeline());
  totals.visible_gaps_by_output.clear();
  for (std::size_t i = 0; i < tracker.size(); ++i)
    totals.visible_gaps_by_output.push_back(tracker.timeline(i).gaps());
}

load_counters& load_counters::operator+=(const load_counters& other) {
  connections_ok += other.connections_ok;
  batches_sent += other.batches_sent;
  batches_acked += other.batches_acked;
  batches_failed += other.batches_failed;
  batches_unacked += other.batches_unacked;
  samples_sent += other.samples_sent;
  samples_acked += other.samples_acked;
  samples_accepted += other.samples_accepted;
  duplicates += other.duplicates;
  errors += other.errors;
  batches_late += other.batches_late;
  retries += other.retries;
  reconnects += other.reconnects;
  return *this;
}

bool run_succeeded(const load_options& opts, const load_totals& totals) {
  const auto& c = totals.counters;
  bool visible_ok = totals.visible_keys == 0
                    || (totals.visible_unseen == 0 && totals.visible_missing == 0
                        && totals.reader_errors == 0);
  auto sessions = totals.sessions != 0 ? totals.sessions : opts.connections;
  return c.connections_ok == sessions && c.errors == 0 && c.batches_failed == 0
         && c.batches_unacked == 0 && c.batches_acked == c.batches_sent && visible_ok;
}

std::string format_quantiles(const latency_histogram& h) {
  if (h.count() == 0)
    return "-";
  return "p50 " + format_ms(h.quantile(0.5)) + "  p90 " + format_ms(h.quantile(0.9))
         + "  p99 " + format_ms(h.quantile(0.99)) + "  p99.9 " + format_ms(h.quantile(0.999))
         + "  max " + format_ms(h.max());
}

std::string format_ms(std::uint64_t nanoseconds) {
  return fixed(static_cast<double>(nanoseconds) / 1e6, 3);
}

std::string render_report_text(const load_options& opts, const load_totals& totals) {
  const auto& c = totals.counters;
  const auto& h = totals.latency;
  std::string out;
  out += line("server", servers_text(opts)
                          + (totals.node.empty() ? "" : " (node " + totals.node + ")"));
  out += line("connections", std::to_string(opts.connections) + " ("
                               + (totals.sessions > opts.connections
                                    ? std::to_string(totals.sessions) + " routed, "
                                    : std::string{})
                               + std::to_string(c.connections_ok) + " connected, "
                               + std::to_string(opts.threads) + " I/O thread"
                               + (opts.threads == 1 ? ")" : "s)"));
  std::string inflight = std::to_string(opts.inflight);
  if (totals.inflight_lowered_to != 0)
    inflight += " (lowered to " + std::to_string(totals.inflight_lowered_to) + " by the node)";
  out += line("batch", std::to_string(opts.batch) + " samples, " + inflight
                         + " in flight per connection");
  std::string series = std::to_string(opts.series) + " " + std::string{to_string(opts.kind)}
                       + (opts.series == 1 ? "" : "s");
  if (opts.metrics > 0)
    series += ", " + std::to_string(opts.metrics) + " metric name"
              + (opts.metrics == 1 ? "" : "s");
  if (opts.groups > 0)
    series += ", " + std::to_string(opts.groups) + " group" + (opts.groups == 1 ? "" : "s");
  if (opts.keys == key_distribution::zipf)
    series += ", zipf s=" + fixed(opts.zipf_s, 2) + " seed " + std::to_string(opts.seed);
  else
    series += ", uniform";
  out += line("series", series);
  out += line("duration", fixed(totals.elapsed_seconds, 3) + " s");
  out += line("samples acked", std::to_string(c.samples_acked) + " of "
                                 + std::to_string(c.samples_sent) + " sent ("
                                 + std::to_string(c.samples_accepted) + " accepted)");
  out += line("batches acked", std::to_string(c.batches_acked) + " of "
                                 + std::to_string(c.batches_sent) + " sent ("
                                 + std::to_string(c.batches_failed) + " failed, "
                                 + std::to_string(c.batches_unacked) + " unacked)");
  out += line("throughput",
              fixed(per_second(c.samples_acked, totals.elapsed_seconds), 0) + " samples/s, "
                + fixed(per_second(c.batches_acked, totals.elapsed_seconds), 1)
                + " batches/s");
  if (opts.rate != 0) {
    out += line("rate", "open loop: target " + std::to_string(opts.rate)
                          + " samples/s, achieved "
                          + fixed(per_second(c.samples_sent, totals.send_seconds), 0)
                          + " samples/s sent");
    out += line("late batches", std::to_string(c.batches_late) + " of "
                                  + std::to_string(c.batches_sent)
                                  + " sent more than "
                                  + std::to_string(send_schedule::late_threshold.count())
                                  + " ms after their scheduled time");
  }
  out += line("ack latency ms", format_quantiles(h));
  if (totals.visible_keys > 0) {
    out += line("visible ms", format_quantiles(totals.visible));
    std::string reader = std::to_string(totals.visible_keys) + " output"
                         + (totals.visible_keys == 1 ? "" : "s") + ", "
                         + std::to_string(totals.visible.count()) + " updates visible, "
                         + std::to_string(totals.visible_unseen) + " never";
    if (totals.visible_missing > 0)
      reader += ", " + std::to_string(totals.visible_missing) + " outputs not found";
    if (totals.reader_rtt.count() > 0)
      reader += "; query round trip p50 " + format_ms(totals.reader_rtt.quantile(0.5))
                + " p99 " + format_ms(totals.reader_rtt.quantile(0.99)) + " ms, poll "
                + std::to_string(opts.visible_poll.count()) + " ms";
    out += line("visibility", reader);
  }
  if (c.retries != 0 || c.reconnects != 0)
    out += line("retries", std::to_string(c.retries) + " batches sent again, "
                             + std::to_string(c.reconnects) + " reconnects");
  if (const auto* g = longest(totals.acked.gaps))
    out += line("longest ack gap", gap_text(*g));
  if (totals.visible_keys > 0)
    if (const auto* g = longest(totals.visible_over_time.gaps))
      out += line("longest visible gap", gap_text(*g));
  out += line("errors", std::to_string(c.errors));
  out += line("duplicates", std::to_string(c.duplicates));
  out += line("result", run_succeeded(opts, totals) ? "ok" : "FAILED");
  return out;
}

std::string render_report_json(const load_options& opts, const load_totals& totals) {
  const auto& c = totals.counters;
  const auto& h = totals.latency;
  auto quantiles = [](const latency_histogram& q) {
    return boost::json::object{
      {"p50", ms_value(q.quantile(0.5))},   {"p90", ms_value(q.quantile(0.9))},
      {"p99", ms_value(q.quantile(0.99))},  {"p999", ms_value(q.quantile(0.999))},
      {"max", ms_value(q.max())},           {"mean", q.mean() / 1e6},
      {"count", q.count()},
    };
  };
  auto spectrum = [](const latency_histogram& q) {
    boost::json::array out;
    for (double p : spectrum_quantiles)
      out.push_back(boost::json::array{p, ms_value(q.quantile(p))});
    return out;
  };
  boost::json::object obj{
    {"system", totals.system},
    {"server", servers_text(opts)},
    {"node", totals.node},
    {"connections", opts.connections},
    {"connections_ok", c.connections_ok},
    {"sessions", totals.sessions},
    {"threads", opts.threads},
    {"batch", opts.batch},
    {"inflight", totals.inflight_lowered_to != 0 ? totals.inflight_lowered_to : opts.inflight},
    {"series", opts.series},
    {"kind", to_string(opts.kind)},
    {"metrics", opts.metrics},
    {"groups", opts.groups},
    {"keys", to_string(opts.keys)},
    {"zipf_s", opts.zipf_s},
    {"seed", opts.seed},
    {"duration_s", totals.elapsed_seconds},
    {"samples_sent", c.samples_sent},
    {"samples_acked", c.samples_acked},
    {"samples_accepted", c.samples_accepted},
    {"batches_sent", c.batches_sent},
    {"batches_acked", c.batches_acked},
    {"batches_failed", c.batches_failed},
    {"batches_unacked", c.batches_unacked},
    {"throughput_samples_per_s", per_second(c.samples_acked, totals.elapsed_seconds)},
    {"throughput_batches_per_s", per_second(c.batches_acked, totals.elapsed_seconds)},
    {"target_rate", opts.rate},
    {"achieved_rate", per_second(c.samples_sent, totals.send_seconds)},
    {"late_batches", c.batches_late},
    {"latency_ms", quantiles(h)},
    {"latency_spectrum_ms", spectrum(h)},
    {"visible_keys", totals.visible_keys},
    {"visible_spectrum_ms", spectrum(totals.visible)},
    {"visible_latency_ms", quantiles(totals.visible)},
    {"visible_unseen", totals.visible_unseen},
    {"visible_missing", totals.visible_missing},
    {"reader_rtt_ms", quantiles(totals.reader_rtt)},
    {"reader_errors", totals.reader_errors},
    {"visible_poll_ms", opts.visible_poll.count()},
    {"fold_series", opts.fold_series},
    {"routed", opts.routed},
    {"errors", c.errors},
    {"duplicates", c.duplicates},
    {"retries", c.retries},
    {"reconnects", c.reconnects},
    {"start_unix_ms", totals.start_unix_ms},
    {"timeline",
     boost::json::object{{"bucket_ms", totals.timeline_bucket_ms},
                         {"acked_samples", numbers_json(totals.acked.buckets)},
                         {"visible_updates", numbers_json(totals.visible_over_time.buckets)}}},
    {"ack_gaps", gaps_json(totals.acked.gaps)},
    {"visible_gaps", gaps_json(totals.visible_over_time.gaps)},
    {"visible_gaps_by_output",
     [&] {
       boost::json::array out;
       for (const auto& gaps : totals.visible_gaps_by_output)
         out.push_back(gaps_json(gaps));
       return out;
     }()},
    {"ok", run_succeeded(opts, totals)},
  };
  return boost::json::serialize(obj) + "\n";
}

std::string format_progress(double elapsed_seconds, double samples_per_second,
                            std::uint64_t samples_acked, std::uint64_t errors,
                            std::uint64_t batches_in_flight) {
  char buf[200];
  auto n = std::snprintf(buf, sizeof(buf),
                         "[%7.1fs] %12.0f samples/s  %14llu acked  %6llu errors  %5llu in flight",
                         elapsed_seconds, samples_per_second,
                         static_cast<unsigned long long>(samples_acked),
                         static_cast<unsigned long long>(errors),
                         static_cast<unsigned long long>(batches_in_flight));
  return std::string{buf, static_cast<size_t>(n > 0 ? n : 0)};
}

} // namespace tether::tools::load
