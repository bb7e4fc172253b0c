#include "nats_run.hpp"

#include "tether-load/load_run.hpp"
#include "tether-load/nats/nats_cluster.hpp"
#include "tether-load/nats/nats_producer.hpp"
#include "tether-load/output_map.hpp"
#include "tether-load/visibility_tracker.hpp"

#include <boost/json.hpp>

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <memory>
#include <thread>

namespace tether::tools::nats {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr const char* stream_name = "TETHER_LOAD";
constexpr const char* durable_name = "tether-aggregator";

double seconds_between(clock_type::time_point from, clock_type::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

/// Waits up to `d` for SIGINT or SIGTERM (blocked by the caller); returns the signal or 0.
int wait_signal(std::chrono::nanoseconds d) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (d < 1ms)
    d = 1ms;
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(d.count() / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(d.count() % 1'000'000'000);
  int sig = sigtimedwait(&set, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

/// The admin connection: creates the stream and deletes it when done with a cluster it
/// did not launch.
class admin {
public:
  ~admin() {
    if (js_ != nullptr)
      jsCtx_Destroy(js_);
    if (conn_ != nullptr) {
      natsConnection_Close(conn_);
      natsConnection_Destroy(conn_);
    }
  }

  /// Connects and creates the stream, retrying until `deadline` (a fresh cluster needs
  /// a moment to elect its JetStream meta leader). Returns an empty string on success.
  std::string setup(const nats_options& opts, const std::vector<std::string>& urls,
                    clock_type::time_point deadline, bool& interrupted) {
    std::string last_error;
    while (clock_type::now() < deadline) {
      if (conn_ == nullptr)
        last_error = connect(urls);
      if (conn_ != nullptr) {
        last_error = create_stream(opts);
        if (last_error.empty())
          return {};
      }
      if (wait_signal(200ms) != 0) {
        interrupted = true;
        return "interrupted";
      }
    }
    return "JetStream not ready within " + std::to_string(opts.ready_timeout.count())
           + " ms: " + last_error;
  }

  /// The current leader of the stream, or of the consumer `durable`; empty if unknown.
  std::string stream_leader() {
    if (js_ == nullptr)
      return {};
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    std::string out;
    if (js_GetStreamInfo(&si, js_, stream_name, nullptr, &jerr) == NATS_OK && si != nullptr
        && si->Cluster != nullptr && si->Cluster->Leader != nullptr)
      out = si->Cluster->Leader;
    if (si != nullptr)
      jsStreamInfo_Destroy(si);
    return out;
  }

  std::string consumer_leader(const char* durable) {
    if (js_ == nullptr)
      return {};
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    std::string out;
    if (js_GetConsumerInfo(&ci, js_, stream_name, durable, nullptr, &jerr) == NATS_OK
        && ci != nullptr && ci->Cluster != nullptr && ci->Cluster->Leader != nullptr)
      out = ci->Cluster->Leader;
    if (ci != nullptr)
      jsConsumerInfo_Destroy(ci);
    return out;
  }

  void delete_stream() {
    if (js_ == nullptr)
      return;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    js_DeleteStream(js_, stream_name, nullptr, &jerr);
  }

private:
  std::string connect(const std::vector<std::string>& urls) {
    natsOptions* o = nullptr;
    natsOptions_Create(&o);
    std::vector<const char*> servers;
    for (const auto& u : urls)
      servers.push_back(u.c_str());
    natsOptions_SetServers(o, servers.data(), static_cast<int>(servers.size()));
    natsOptions_SetTimeout(o, 2000);
    natsOptions_SetName(o, "tether-nats-baseline admin");
    auto s = natsConnection_Connect(&conn_, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK) {
      conn_ = nullptr;
      return std::string{"connect: "} + natsStatus_GetText(s);
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 2000;
    s = natsConnection_JetStream(&js_, conn_, &jo);
    if (s != NATS_OK)
      return std::string{"JetStream context: "} + natsStatus_GetText(s);
    return {};
  }

  std::string create_stream(const nats_options& opts) {
    // A stream of an earlier run (on a cluster given by --nats-url) goes first.
    delete_stream();
    const char* subjects[] = {"tether.load.>"};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = stream_name;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = opts.storage == storage_kind::memory ? js_MemoryStorage : js_FileStorage;
    sc.Replicas = static_cast<int64_t>(opts.replicas);
    sc.Retention = js_InterestPolicy;
    sc.Discard = js_DiscardNew;
    sc.MaxBytes = static_cast<int64_t>(opts.stream_max_bytes);
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    auto s = js_AddStream(&si, js_, &sc, nullptr, &jerr);
    if (si != nullptr)
      jsStreamInfo_Destroy(si);
    if (s != NATS_OK)
      return std::string{"create stream: "} + natsStatus_GetText(s) + " ("
             + nats_GetLastError(nullptr) + ")";
    return {};
  }

  natsConnection* conn_ = nullptr;
  jsCtx* js_ = nullptr;
};

/// `n2` for the URL of server index 1 among `urls`; the URL itself if not among them.
std::string server_name(const std::vector<std::string>& urls, const std::string& url) {
  for (std::size_t i = 0; i < urls.size(); ++i)
    if (urls[i] == url)
      return "n" + std::to_string(i + 1);
  return url;
}

std::string progress_line(double elapsed, double ack_rate, std::uint64_t acked,
                          std::uint64_t errors, std::uint64_t in_flight, double apply_rate,
                          std::uint64_t behind) {
  auto head = load::format_progress(elapsed, ack_rate, acked, errors, in_flight);
  char buf[160];
  std::snprintf(buf, sizeof(buf), " | consumer %12.0f samples/s, %12llu behind", apply_rate,
                static_cast<unsigned long long>(behind));
  return head + buf;
}

} // namespace

nats_run::nats_run(const nats_options& opts) : opts_(opts) {
  // nop
}

result<nats_totals> nats_run::run() {
  const auto& lo = opts_.load;
  // Aggregation: the node's defaults and rules.
  tether::rules::rule_defaults defaults;
  defaults.window_ms = opts_.window_ms;
  std::shared_ptr<const tether::rules::rule_set> rules;
  if (opts_.rules_file.empty()) {
    rules = tether::rules::rule_set::empty(defaults);
  } else {
    std::string error;
    rules = tether::rules::rule_set::load(opts_.rules_file, defaults, error);
    if (!rules)
      return fail("rules: " + error);
  }
  aggregator_config agg;
  agg.slice_count = opts_.slice_count;
  agg.lateness_ms = opts_.lateness_ms;
  agg.rules = rules;
  // The servers.
  nats_totals totals;
  std::unique_ptr<nats_cluster> cluster;
  auto urls = opts_.urls;
  if (urls.empty()) {
    cluster_config cc;
    cc.servers = opts_.servers;
    cc.base_port = opts_.port;
    cc.parent_dir = opts_.dir;
    cc.binary = opts_.server_binary;
    cc.keep_dir = opts_.keep_dir;
    cc.start_timeout = opts_.ready_timeout;
    cluster = std::make_unique<nats_cluster>(cc);
    if (auto error = cluster->start(); !error.empty())
      return fail("nats cluster: " + error);
    urls = cluster->urls();
    totals.servers = "launched " + std::to_string(opts_.servers);
    if (!lo.quiet)
      std::cerr << "tether-nats-baseline: " << opts_.servers << " nats-server in "
                << cluster->dir() << "\n";
  } else {
    totals.servers = urls.front() + (urls.size() > 1 ? " (+" + std::to_string(urls.size() - 1) + ")" : "");
  }
  totals.first_url = urls.front();
  admin adm;
  bool interrupted = false;
  auto ready_by = clock_type::now() + opts_.ready_timeout;
  if (auto error = adm.setup(opts_, urls, ready_by, interrupted); !error.empty())
    return fail(interrupted ? "interrupted during setup" : error);
  // The run's shared state, the reader, the consumer and the producers.
  load::run_context ctx{lo, load::make_run_id()};
  ctx.program = "tether-nats-baseline";
  std::unique_ptr<load::visibility_tracker> tracker;
  if (lo.visible_keys > 0) {
    auto map = load::output_map::of(lo);
    tracker = std::make_unique<load::visibility_tracker>(map, map.spread(lo.visible_keys));
    ctx.tracker = tracker.get();
  }
  nats_consumer consumer{ctx, agg, opts_.fetch, opts_.pull};
  if (auto error = consumer.connect(urls, stream_name, durable_name, opts_.ack_wait);
      !error.empty())
    return fail(error);
  std::vector<std::unique_ptr<nats_producer>> producers;
  for (std::uint32_t i = 0; i < lo.connections; ++i) {
    producers.push_back(std::make_unique<nats_producer>(ctx, i, opts_.publish_timeout));
    if (auto error = producers.back()->connect(urls); !error.empty())
      return fail(error);
  }
  if (!lo.quiet)
    std::cerr << "tether-nats-baseline: stream " << stream_name << " (" << opts_.replicas
              << " replica" << (opts_.replicas == 1 ? "" : "s") << ", "
              << to_string(opts_.storage) << "), " << lo.connections
              << " producers, 1 " << (opts_.pull ? "pull" : "push") << " consumer: running\n";
  // Go.
  auto start = clock_type::now();
  totals.load.start_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
  ctx.acked.start(start);
  ctx.start_measuring(start);
  if (tracker)
    tracker->start_timelines(start);
  const bool kill_planned = opts_.kill_at.count() > 0 && cluster != nullptr;
  bool kill_done = false;
  auto kill_time = start + opts_.kill_at;
  // The failure experiment: SIGKILL the chosen server, noting where everything was.
  auto kill_server = [&] {
    kill_done = true;
    auto& f = totals.failure;
    f.stream_leader = adm.stream_leader();
    f.consumer_leader = adm.consumer_leader(durable_name);
    f.consumer_on = server_name(urls, consumer.connected_url());
    std::string victim;
    switch (opts_.kill) {
      case kill_target::stream_leader:
        victim = f.stream_leader;
        f.chosen_as = "stream leader";
        break;
      case kill_target::consumer_leader:
        victim = f.consumer_leader;
        f.chosen_as = "consumer leader";
        break;
      case kill_target::index:
        victim = "n" + std::to_string(opts_.kill_index + 1);
        f.chosen_as = "given";
        break;
    }
    std::uint32_t index = 0;
    if (victim.size() < 2 || victim[0] != 'n'
        || (index = static_cast<std::uint32_t>(std::atoi(victim.c_str() + 1))) < 1
        || index > urls.size()) {
      f.error = "no " + f.chosen_as + " known (got '" + victim + "')";
      std::cerr << "tether-nats-baseline: --kill-at: " << f.error << "\n";
      return;
    }
    for (std::uint32_t i = 0; i < producers.size(); ++i)
      if (!producers[i]->finished() && producers[i]->connected_url() == urls[index - 1])
        f.producers_on.push_back(i);
    if (!cluster->signal(index - 1, SIGKILL)) {
      f.error = victim + " is not running";
      std::cerr << "tether-nats-baseline: --kill-at: " << f.error << "\n";
      return;
    }
    auto now = clock_type::now();
    f.at_s = seconds_between(start, now);
    f.server = victim;
    if (!lo.quiet)
      std::cerr << "tether-nats-baseline: killed " << victim << " (" << f.chosen_as
                << "; stream leader " << f.stream_leader << ", consumer leader "
                << f.consumer_leader << ", consumer connected to " << f.consumer_on << ") at "
                << f.at_s << " s\n";
  };
  std::thread consumer_thread{[&consumer] { consumer.run(); }};
  std::vector<std::thread> threads;
  for (auto& p : producers)
    threads.emplace_back([&p, start] { p->run(start); });
  auto deadline = start + lo.duration;
  bool stop_requested = false;
  bool aborted = false;
  bool draining = false;
  auto next_progress = start + 1s;
  auto last_progress = start;
  std::uint64_t last_acked = 0;
  std::uint64_t last_applied = 0;
  std::uint64_t applied_at_stop = 0;
  auto stopped_sending = start;
  auto note_stop = [&] {
    if (stopped_sending != start)
      return;
    stopped_sending = clock_type::now();
    applied_at_stop = consumer.samples_applied();
  };
  auto stop_all = [&] {
    note_stop();
    stop_requested = true;
    for (auto& p : producers)
      p->request_stop();
  };
  auto abort_all = [&] {
    note_stop();
    aborted = true;
    stop_requested = true;
    for (auto& p : producers)
      p->abort();
    consumer.abort();
  };
  for (;;) {
    auto now = clock_type::now();
    bool producers_done = std::all_of(producers.begin(), producers.end(),
                                      [](const auto& p) { return p->finished(); });
    if (producers_done && !draining) {
      note_stop(); // the sample budget ended the sending
      draining = true;
      std::uint64_t stored = 0;
      for (const auto& p : producers)
        stored += p->counters().batches_acked;
      consumer.drain(stored, now + lo.drain_timeout);
    }
    if (producers_done && consumer.finished())
      break;
    if (!stop_requested && now >= deadline)
      stop_all();
    if (kill_planned && !kill_done && !stop_requested && now >= kill_time)
      kill_server();
    auto wake = std::min(next_progress, now + 100ms);
    if (!stop_requested)
      wake = std::min(wake, deadline);
    if (kill_planned && !kill_done)
      wake = std::min(wake, kill_time);
    if (int sig = wait_signal(wake - now); sig != 0) {
      if (!stop_requested) {
        std::cerr << "tether-nats-baseline: interrupted: stopping (again to abort)\n";
        stop_all();
      } else if (!aborted) {
        std::cerr << "tether-nats-baseline: aborting\n";
        abort_all();
      }
    }
    now = clock_type::now();
    if (!lo.quiet && now >= next_progress) {
      auto acked = ctx.samples_acked.load(std::memory_order_relaxed);
      auto applied = consumer.samples_applied();
      auto interval = seconds_between(last_progress, now);
      auto sent = ctx.batches_sent.load(std::memory_order_relaxed);
      auto answered = ctx.batches_answered.load(std::memory_order_relaxed);
      std::cerr << progress_line(seconds_between(start, now),
                                 static_cast<double>(acked - last_acked) / interval, acked,
                                 ctx.errors.load(std::memory_order_relaxed),
                                 sent > answered ? sent - answered : 0,
                                 static_cast<double>(applied - last_applied) / interval,
                                 acked > applied ? acked - applied : 0)
                << '\n';
      last_progress = now;
      last_acked = acked;
      last_applied = applied;
      next_progress = now + 1s;
    }
  }
  for (auto& t : threads)
    t.join();
  consumer_thread.join();
  // Totals.
  auto& t = totals.load;
  t.system = "nats-jetstream";
  t.node = std::to_string(urls.size()) + " server" + (urls.size() == 1 ? "" : "s") + ", stream R"
           + std::to_string(opts_.replicas) + " " + std::string{to_string(opts_.storage)};
  auto stop_time = start;
  clock_type::time_point last_ack{};
  for (const auto& p : producers) {
    t.counters += p->counters();
    t.latency.merge(p->latency());
    stop_time = std::max(stop_time, p->stopped_at());
    last_ack = std::max(last_ack, p->last_ack());
  }
  t.elapsed_seconds = seconds_between(start, std::max({start, stop_time, last_ack}));
  t.send_seconds = seconds_between(start, stop_time);
  ctx.acked.finish(std::max({start, stop_time, last_ack}));
  t.timeline_bucket_ms = static_cast<std::uint32_t>(ctx.acked.bucket().count());
  t.acked = load::timeline_data::of(ctx.acked);
  if (tracker) {
    tracker->finish_timelines(std::max({start, stop_time, consumer.last_apply()}));
    load::take_visible_timelines(*tracker, t);
  }
  if (kill_done)
    totals.failure.stream_leader_after = adm.stream_leader();
  totals.consumer = consumer.counters();
  totals.consumer_seconds = seconds_between(start, std::max(start, consumer.last_apply()));
  totals.applied_while_sending = applied_at_stop;
  totals.sending_seconds = seconds_between(start, stopped_sending);
  totals.series = consumer.series();
  if (tracker) {
    t.visible = tracker->latency();
    t.visible_keys = static_cast<std::uint32_t>(tracker->size());
    t.visible_unseen = tracker->pending_total();
    t.visible_missing = consumer.missing_keys();
  }
  if (!cluster)
    adm.delete_stream();
  producers.clear();
  return totals;
}

load::load_options report_options(const nats_options& opts, const std::string& first_url) {
  auto out = opts.load;
  auto text = first_url;
  if (auto pos = text.find("://"); pos != std::string::npos)
    text = text.substr(pos + 3);
  if (auto hp = parse_host_port(text)) {
    out.server = *hp;
    out.servers = {*hp};
  }
  out.threads = 1;
  return out;
}

bool run_succeeded(const nats_options& opts, const nats_totals& totals) {
  const auto& c = totals.consumer;
  return load::run_succeeded(opts.load, totals.load) && c.errors == 0
         && c.messages >= totals.load.counters.batches_acked;
}

namespace {

double per_second(std::uint64_t n, double seconds) {
  return seconds > 0 ? static_cast<double>(n) / seconds : 0.0;
}

std::string consumer_line(const nats_totals& totals) {
  const auto& c = totals.consumer;
  char buf[400];
  std::snprintf(buf, sizeof(buf),
                "%llu messages, %llu samples applied (%.0f samples/s; %.0f samples/s while "
                "sending), %llu late, %llu duplicate messages, %llu errors; %llu output series",
                static_cast<unsigned long long>(c.messages),
                static_cast<unsigned long long>(c.samples_applied),
                per_second(c.samples_applied, totals.consumer_seconds),
                per_second(totals.applied_while_sending, totals.sending_seconds),
                static_cast<unsigned long long>(c.samples_late),
                static_cast<unsigned long long>(c.duplicates),
                static_cast<unsigned long long>(c.errors),
                static_cast<unsigned long long>(totals.series));
  return buf;
}

} // namespace

std::string render_text(const nats_options& opts, const nats_totals& totals) {
  auto lo = report_options(opts, totals.first_url);
  auto text = load::render_report_text(lo, totals.load);
  // The shared report's last line is the verdict; the consumer goes before it and the
  // verdict is the baseline's own.
  auto verdict = text.rfind("result ");
  if (verdict != std::string::npos)
    text.erase(verdict);
  text += "system          nats-jetstream (" + totals.servers + " servers, "
          + std::to_string(opts.replicas) + " replicas, " + std::string{to_string(opts.storage)}
          + " storage, " + (opts.pull ? "pull consumer, fetch " : "push consumer, ack window ")
          + std::to_string(opts.pull ? opts.fetch : 16 * opts.fetch) + ")\n";
  text += "consumer        " + consumer_line(totals) + "\n";
  if (opts.kill_at.count() > 0) {
    const auto& f = totals.failure;
    if (f.at_s >= 0)
      text += "failure         SIGKILL of " + f.server + " (" + f.chosen_as + ") at "
              + std::to_string(f.at_s) + " s; stream leader then " + f.stream_leader
              + ", after " + f.stream_leader_after + "\n";
    else
      text += "failure         none: " + f.error + "\n";
  }
  text += std::string{"result          "} + (run_succeeded(opts, totals) ? "ok" : "FAILED") + "\n";
  return text;
}

std::string render_json(const nats_options& opts, const nats_totals& totals) {
  auto lo = report_options(opts, totals.first_url);
  auto doc = boost::json::parse(load::render_report_json(lo, totals.load)).as_object();
  const auto& c = totals.consumer;
  doc["consumer"] = boost::json::object{
    {"messages", c.messages},
    {"samples_applied", c.samples_applied},
    {"samples_late", c.samples_late},
    {"duplicates", c.duplicates},
    {"errors", c.errors},
    {"reconnects", c.reconnects},
    {"cpu_seconds", c.cpu_seconds},
    {"seconds", totals.consumer_seconds},
    {"throughput_samples_per_s", per_second(c.samples_applied, totals.consumer_seconds)},
    {"applied_while_sending", totals.applied_while_sending},
    {"sending_seconds", totals.sending_seconds},
    {"while_sending_samples_per_s",
     per_second(totals.applied_while_sending, totals.sending_seconds)},
    {"series", totals.series},
    {"fetch", opts.fetch},
    {"mode", opts.pull ? "pull" : "push"},
  };
  doc["storage"] = to_string(opts.storage);
  doc["replicas"] = opts.replicas;
  doc["servers"] = totals.servers;
  doc["publish_timeout_ms"] = opts.publish_timeout.count();
  doc["ack_wait_ms"] = opts.ack_wait.count();
  if (opts.kill_at.count() > 0) {
    const auto& f = totals.failure;
    boost::json::array on;
    for (auto i : f.producers_on)
      on.push_back(i);
    doc["failure"] = boost::json::object{
      {"at_s", f.at_s},
      {"server", f.server},
      {"chosen_as", f.chosen_as},
      {"stream_leader", f.stream_leader},
      {"consumer_leader", f.consumer_leader},
      {"stream_leader_after", f.stream_leader_after},
      {"consumer_connected_to", f.consumer_on},
      {"producers_connected_to_it", on},
      {"error", f.error},
    };
  }
  doc["ok"] = run_succeeded(opts, totals);
  return boost::json::serialize(doc) + "\n";
}

} // namespace tether::tools::nats
