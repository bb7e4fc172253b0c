#include "tether/node.hpp"

#include <algorithm>
#include <iostream>
#include <limits>
#include <stdexcept>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/config_option_adder.hpp>
#include <caf/io/middleman.hpp>
#include <caf/function_view.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/send.hpp>
#include <caf/settings.hpp>
#include <caf/sec.hpp>

#include "node/cluster_tls.hpp"
#include "node/peer_identity.hpp"
#include "node/tls_transport.hpp"
#include "directory/controller.hpp"
#include "directory/directory.hpp"
#include "directory/directory_client.hpp"
#include "directory/replicated_directory.hpp"
#include "node/node_impl.hpp"
#include "routing/ingest.hpp"
#include "routing/router.hpp"
#include "outputs/exporter.hpp"
#include "rules/rule_cache.hpp"
#include "series/ddsketch.hpp"
#include "series/dedup_window.hpp"
#include "shard/message_types.hpp"
#include "shard/shard.hpp"
#include "supervision/supervisor.hpp"
#include "tether/tether.hpp"

namespace tether {

namespace {

constexpr auto error_category = caf::atom("tether");

} // namespace

// -- errors -------------------------------------------------------------------

caf::error make_error(errc code, std::string message) {
  return caf::error{static_cast<uint8_t>(code), error_category,
                    caf::make_message(std::move(message))};
}

errc code_of(const caf::error& err) {
  if (!err)
    return errc::none;
  if (err.category() == error_category)
    return static_cast<errc>(err.code());
  // An actor that did not answer in time, or went away, leaves the outcome open:
  // the request may or may not have been carried out, so it is retryable (a write
  // retried with the same sequence is deduplicated).
  if (err == caf::sec::request_timeout || err == caf::sec::request_receiver_down)
    return errc::unavailable;
  return errc::internal;
}

bool outcome_unknown(const caf::error& err) {
  return err && err.category() != error_category;
}

std::string message_of(const caf::error& err) {
  if (err.category() == error_category && err.context().match_elements<std::string>())
    return err.context().get_as<std::string>(0);
  return to_string(err);
}

// -- configuration -------------------------------------------------------------

void configure(caf::actor_system_config& cfg) {
  node_options d; // defaults
  // Node-to-node traffic runs over CAF's middleman. Heartbeats at both ends of
  // every connection find a dead peer within the connection timeout.
  cfg.load<caf::io::middleman>();
  // Mutual TLS between nodes when openssl.certificate, .key and .cafile are set
  // (docs/security.md); the module is idle otherwise.
  cfg.load<caf::openssl::manager>();
  cfg.set("middleman.heartbeat-interval", caf::timespan{std::chrono::milliseconds(100)});
  cfg.set("middleman.connection-timeout", caf::timespan{std::chrono::milliseconds(1000)});
  // Runtime defaults measured on the replicated write path (docs/benchmarks.md,
  // "Runtime defaults"); each can still be set in the config file or on the command
  // line. Work stealing polls for jobs with 50 us sleeps for 25 ms after every job:
  // with timers and heartbeats due every few milliseconds its workers never sleep,
  // and an idle three-node cluster burned a core. The sharing policy's workers block
  // on a condition variable instead. One worker per core, not at least four, and
  // the middleman's receiving thread deserializes what it reads itself rather than
  // handing each message to a worker thread first: fewer thread wake-ups on every
  // hop between nodes, which is most of a replicated write's latency.
  cfg.set("scheduler.policy", caf::atom("sharing"));
  cfg.set("scheduler.max-threads",
          static_cast<size_t>(std::max(1u, std::thread::hardware_concurrency())));
  cfg.set("middleman.workers", size_t{0});
  declare_options(cfg, "tether", node_option_table(d));
  cfg.add_error_category(error_category,
                         [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                           std::string out{"tether."};
                           out += to_string_view(static_cast<errc>(code));
                           if (ctx.match_elements<std::string>()) {
                             out += ": ";
                             out += ctx.get_as<std::string>(0);
                           }
                           return out;
                         });
  // Every message type that may cross a node boundary, in one place.
  cfg.add_message_type<sample>("tether.sample");
  cfg.add_message_type<std::vector<sample>>("std::vector<tether.sample>");
  cfg.add_message_type<write_ack>("tether.write_ack");
  cfg.add_message_type<series_view>("tether.series_view");
  cfg.add_message_type<std::vector<series_view>>("std::vector<tether.series_view>");
  cfg.add_message_type<member>("tether.member");
  cfg.add_message_type<slice_assignment>("tether.slice_assignment");
  cfg.add_message_type<assignment_table>("tether.assignment_table");
  cfg.add_message_type<wire::keyed_batch>("tether.keyed_batch");
  cfg.add_message_type<series::shard_write>("tether.shard_write");
  cfg.add_message_type<series::shard_write_result>("tether.shard_write_result");
  cfg.add_message_type<series::key_route>("tether.key_route");
  cfg.add_message_type<series::shard_scrape>("tether.shard_scrape");
  cfg.add_message_type<std::vector<series::key_route>>(
    "std::vector<tether.key_route>");
  cfg.add_message_type<ingest_actor>("tether.ingest_actor");
  cfg.add_message_type<directory_actor>("tether.directory_actor");
  directory::add_replicated_directory_types(cfg);
  series::add_message_types(cfg);
  directory::add_controller_types(cfg);
  supervision::add_supervision_types(cfg);
  cfg.add_message_type<series::shard_actor>("tether.shard_actor");
}

// -- node ----------------------------------------------------------------------

node::node(std::shared_ptr<impl> ptr) : impl_(std::move(ptr)) {
}

const node_options& node::options() const {
  return impl_->opts;
}

directory_actor node::directory() const {
  return impl_->directory;
}

ingest_actor node::open_producer(std::string producer_id) const {
  auto hdl = routing::spawn_ingest(impl_->sys, impl_->ingest, std::move(producer_id));
  std::lock_guard<std::mutex> guard{impl_->producers_mtx};
  auto& ps = impl_->producers;
  if (ps.size() >= 64 && (ps.size() & (ps.size() - 1)) == 0) {
    // Forget producers that already ended, at every power of two.
    ps.erase(std::remove_if(ps.begin(), ps.end(),
                            [](const caf::actor_addr& a) {
                              return caf::actor_cast<caf::actor>(a) == nullptr;
                            }),
             ps.end());
  }
  ps.push_back(hdl.address());
  return hdl;
}

node_stats node::stats() const {
  node_stats s;
  s.series = impl_->counters->series.load(std::memory_order_relaxed);
  s.samples_applied = impl_->counters->samples_applied.load(std::memory_order_relaxed);
  s.primary_slices = impl_->counters->primary_slices.load(std::memory_order_relaxed);
  s.samples_late = impl_->counters->samples_late.load(std::memory_order_relaxed);
  s.windows_closed = impl_->counters->windows_closed.load(std::memory_order_relaxed);
  s.batches_acked = impl_->counters->batches_acked.load(std::memory_order_relaxed);
  s.near_answers = impl_->counters->near_answers.load(std::memory_order_relaxed);
  s.input_series = impl_->inputs->total.load(std::memory_order_relaxed);
  if (impl_->sender) {
    auto x = impl_->sender->stats();
    s.exporting = true;
    s.export_queue = x.queue_depth + x.in_flight;
    s.export_sent = x.sent;
    s.export_dropped = x.dropped_queue_full + x.dropped_shutdown + x.failed_after_retries
                       + x.rejected_4xx;
  }
  auto& rejected = impl_->counters->batches_rejected;
  for (size_t i = 0; i < rejected.size(); ++i)
    if (auto n = rejected[i].load(std::memory_order_relaxed); n > 0)
      s.batches_rejected.emplace_back(static_cast<errc>(i), n);
  return s;
}

void node::count_batch(errc code) {
  auto& c = *impl_->counters;
  if (code == errc::none)
    c.batches_acked.fetch_add(1, std::memory_order_relaxed);
  else if (static_cast<size_t>(code) < c.batches_rejected.size())
    c.batches_rejected[static_cast<size_t>(code)].fetch_add(1, std::memory_order_relaxed);
}

void node::shutdown() {
  impl_->shutdown_all();
}

std::shared_ptr<const rules::rule_set> node::rules() const {
  return impl_->rules->load();
}

void node::impl::shutdown_all() {
  auto reason = caf::exit_reason::user_shutdown;
  {
    std::lock_guard<std::mutex> guard{producers_mtx};
    for (auto& a : producers)
      if (auto hdl = caf::actor_cast<caf::actor>(a))
        caf::anon_send_exit(hdl, reason);
    producers.clear();
  }
  if (supervisor)
    caf::anon_send_exit(supervisor, reason);
  if (tls_middleman)
    caf::anon_send_exit(tls_middleman, reason);
  if (plain_middleman)
    caf::anon_send_exit(plain_middleman, reason);
  if (router)
    caf::anon_send_exit(router, reason);
  for (auto& s : shards)
    caf::anon_send_exit(s, reason);
  if (directory)
    caf::anon_send_exit(directory, reason);
  if (controller)
    caf::anon_send_exit(controller, reason);
  if (member)
    caf::anon_send_exit(member, reason);
  if (exporter)
    caf::anon_send_exit(exporter, reason);
  if (sender)
    sender->stop(); // sends what is queued, within its drain time
}

namespace {

/// Listens for cluster traffic through `mm` (one of the node's middleman actors) on
/// host:port, like `middleman::publish` does through CAF's own.
caf::expected<uint16_t> publish_over(caf::actor_system& sys,
                                     const caf::io::middleman_actor& mm,
                                     const supervision::supervisor_actor& whom,
                                     uint16_t port, const std::string& host) {
  auto f = caf::make_function_view(mm);
  return f(caf::publish_atom::value, port,
           caf::actor_cast<caf::strong_actor_ptr>(whom),
           sys.message_types(caf::detail::type_list<supervision::supervisor_actor>{}),
           host, true);
}

rules::rule_defaults defaults_of(const node_options& o) {
  rules::rule_defaults d;
  d.window_ms = o.window_ms;
  return d;
}

/// Loads the configured rules; throws std::invalid_argument naming the problem.
std::shared_ptr<const rules::rule_set> load_rules(const node_options& o) {
  if (o.rules_file.empty())
    return rules::rule_set::empty(defaults_of(o));
  std::string error;
  auto set = rules::rule_set::load(o.rules_file, defaults_of(o), error);
  if (!set)
    throw std::invalid_argument(error);
  return set;
}

} // namespace

std::string node::reload_rules() {
  auto& o = impl_->opts;
  if (o.rules_file.empty())
    return "no rules file is configured (tether.rules-file)";
  std::string error;
  auto set = rules::rule_set::load(o.rules_file, defaults_of(o), error);
  if (!set)
    return error;
  impl_->rules->store(std::move(set));
  return {};
}

namespace {

/// The remote-write sender and the exporter that feeds it, when a URL is set.
void start_outputs(caf::actor_system& sys, node::impl& n) {
  auto& opts = n.opts;
  if (opts.remote_write_url.empty())
    return;
  outputs::remote_write_sender_options so;
  so.endpoint = opts.remote_write_url;
  std::string error;
  auto sender = outputs::remote_write_sender::make(so, error);
  if (!sender)
    throw std::invalid_argument("tether.remote-write-url: " + error);
  n.sender = std::move(sender);
  n.sender->start();
  n.exporter = outputs::spawn_exporter(sys, n.sender, n.rules, opts.staleness_ms);
}

/// The configuration of shard `i` of the node.
series::shard_config shard_config_for(const node::impl& n, uint32_t i,
                                      uint64_t incarnation) {
  auto& opts = n.opts;
  series::shard_config sc;
  sc.index = i;
  sc.shard_count = opts.shards;
  sc.node_name = opts.name;
  sc.incarnation = incarnation;
  sc.events = n.events;
  sc.window_ms = opts.window_ms;
  sc.lateness_ms = opts.lateness_ms;
  sc.max_sequence_jump = opts.limits.max_sequence_jump;
  sc.producer_idle_ms = static_cast<int64_t>(opts.limits.producer_idle_ms);
  sc.max_producers_per_slice = opts.limits.max_producers_per_slice;
  sc.max_series = opts.limits.max_series;
  sc.staleness_ms = opts.staleness_ms;
  sc.accuracy = opts.sketch_accuracy;
  sc.rules = n.rules;
  sc.exporter = n.exporter;
  sc.inputs = n.inputs;
  sc.request_timeout_ms = opts.request_timeout_ms;
  sc.directory = n.directory;
  sc.counters = n.counters;
  return sc;
}

/// A node on its own: a local directory, and shards and routes that start from its
/// first table, so that the node serves writes as soon as spawn_node returns
/// (updates follow by subscription).
void spawn_standalone(caf::actor_system& sys, node::impl& n) {
  auto& opts = n.opts;
  directory::directory_config dc;
  dc.members.push_back(member{opts.name, opts.host + ":" + std::to_string(opts.port),
                              true});
  dc.slice_count = opts.slice_count;
  auto initial = directory::initial_table(dc);
  n.directory = directory::spawn_directory(sys, std::move(dc));
  for (uint32_t i = 0; i < opts.shards; ++i) {
    auto sc = shard_config_for(n, i, 0);
    sc.initial = initial;
    n.shards.push_back(series::spawn_shard(sys, std::move(sc)));
  }
  n.cache->store(std::make_shared<const routing::route_table>(
    routing::make_route_table(initial, opts.name, n.shards)));
}

/// A directory member's Raft member and controller; `id` is its Raft id.
void spawn_directory_member(caf::actor_system& sys, node::impl& n, uint32_t id) {
  auto& opts = n.opts;
  auto& names = opts.directory_members;
  directory::replicated_directory_config rc;
  rc.self = id;
  rc.group_size = static_cast<uint32_t>(names.size());
  rc.member_names = names;
  rc.events = n.events;
  rc.bind_members = opts.cluster_tls();
  rc.seed = std::hash<std::string>{}(opts.name);
  if (!opts.data_dir.empty())
    rc.data_dir = opts.data_dir + "/directory";
  n.member = directory::spawn_replicated_directory(sys, std::move(rc));
  directory::controller_config cc;
  cc.member = n.member;
  cc.directory_members = names;
  cc.slice_count = opts.slice_count;
  cc.replication_factor = opts.replication_factor;
  cc.max_moves = opts.max_moves;
  cc.tolerance = opts.balance_tolerance;
  cc.request_timeout_ms = opts.request_timeout_ms;
  cc.events = n.events;
  cc.bind_members = opts.cluster_tls();
  n.controller = directory::spawn_controller(sys, std::move(cc));
}

/// The middleman actor the supervisor dials peers through: mutual TLS when the
/// options name certificates (checked against the system's config), else plain.
caf::io::middleman_actor spawn_connector(caf::actor_system& sys, node::impl& n) {
  auto& opts = n.opts;
  if (!opts.cluster_tls()) {
    n.plain_middleman = internal::spawn_plain_middleman(sys);
    return n.plain_middleman;
  }
  // CAF's sessions read the system's config, not node_options: both must name the
  // same files, or a session would fall back to anonymous TLS.
  auto& sc_cfg = sys.config();
  if (!sys.has_openssl_manager() || sc_cfg.openssl_certificate != opts.tls_certificate
      || sc_cfg.openssl_key != opts.tls_key || sc_cfg.openssl_cafile != opts.tls_cafile) {
    n.shutdown_all();
    throw std::invalid_argument(
      "node-to-node TLS needs CAF's OpenSSL module loaded and the same "
      "openssl.certificate, openssl.key and openssl.cafile in the "
      "actor_system_config as in node_options (tether::configure loads the "
      "module; docs/embedding.md)");
  }
  n.peer_names = std::make_shared<internal::peer_registry>();
  n.tls_middleman = internal::spawn_tls_middleman(sys, opts.name, n.peer_names);
  return n.tls_middleman;
}

/// A cluster member: the directory comes from the Raft group through a client;
/// shards and routes wait for its first table. Leaves the supervisor's
/// configuration in `n.supervisor_config` (the router it feeds is spawned after).
void spawn_member(caf::actor_system& sys, node::impl& n, uint64_t incarnation) {
  auto& opts = n.opts;
  auto client = directory::spawn_directory_client(sys, opts.request_timeout_ms);
  n.directory = caf::actor_cast<directory_actor>(client);
  auto& names = opts.directory_members;
  auto pos = std::find(names.begin(), names.end(), opts.name);
  uint32_t directory_id = pos == names.end()
                            ? 0
                            : static_cast<uint32_t>(pos - names.begin()) + 1;
  if (directory_id > 0)
    spawn_directory_member(sys, n, directory_id);
  for (uint32_t i = 0; i < opts.shards; ++i)
    n.shards.push_back(series::spawn_shard(sys, shard_config_for(n, i, incarnation)));
  supervision::supervisor_config sc;
  sc.name = opts.name;
  sc.gateway = (opts.advertise_host.empty() ? opts.host : opts.advertise_host) + ":"
               + std::to_string(opts.port);
  sc.seeds = opts.seeds;
  sc.incarnation = incarnation;
  sc.connector = spawn_connector(sys, n);
  if (n.peer_names)
    sc.certificate_names = [registry = n.peer_names, self = sys.node(),
                            name = opts.name](const caf::node_id& id) {
      return id == self ? std::vector<std::string>{name} : registry->names_of(id);
    };
  sc.heartbeat_ms = opts.heartbeat_ms;
  sc.suspect_ms = opts.suspect_ms;
  sc.request_timeout_ms = opts.request_timeout_ms;
  sc.shards = n.shards;
  sc.directory_id = directory_id;
  sc.directory = n.member;
  sc.controller = n.controller;
  sc.client = client;
  sc.counters = n.counters;
  sc.events = n.events;
  n.supervisor_config = std::make_unique<supervision::supervisor_config>(std::move(sc));
}

/// Spawns the supervisor (fed by `router`), listens on the cluster port and tells
/// the supervisor the address it announces.
void start_supervisor(caf::actor_system& sys, node::impl& n) {
  auto& opts = n.opts;
  auto sc = std::move(*n.supervisor_config);
  n.supervisor_config.reset();
  sc.router = n.router;
  n.supervisor = supervision::spawn_supervisor(sys, std::move(sc));
  auto host = opts.cluster_host.empty() ? opts.host : opts.cluster_host;
  auto advertised = opts.advertise_host.empty() ? host : opts.advertise_host;
  // The node listens through the middleman it dials with (spawn_connector). With
  // TLS no plain BASP port exists that a peer without a certificate could reach;
  // without it, the plain middleman's connections write at once and read ahead
  // like the TLS ones (tls_transport.hpp).
  auto& mm = n.tls_middleman ? n.tls_middleman : n.plain_middleman;
  auto port = publish_over(sys, mm, n.supervisor, opts.cluster_port, host);
  if (!port) {
    n.shutdown_all();
    throw std::invalid_argument("cannot listen for cluster traffic on " + host + ":"
                                + std::to_string(opts.cluster_port) + ": "
                                + sys.render(port.error()));
  }
  auto advertised_port = opts.advertise_cluster_port != 0 ? opts.advertise_cluster_port
                                                          : *port;
  caf::anon_send(n.supervisor, supervision::start_atom::value,
                 advertised + ":" + std::to_string(advertised_port));
}

} // namespace

node spawn_node(caf::actor_system& sys, const node_options& opts) {
  if (auto err = check(opts); !err.empty())
    throw std::invalid_argument(err);
  auto ptr = std::make_shared<node::impl>(sys);
  ptr->opts = opts;
  if (ptr->opts.shards == 0)
    ptr->opts.shards = std::max(1u, std::thread::hardware_concurrency());
  ptr->counters = std::make_shared<series::node_counters>();
  ptr->counters->size_slices(ptr->opts.slice_count);
  ptr->rules = std::make_shared<rules::rule_cache>(load_rules(ptr->opts));
  ptr->inputs = std::make_shared<series::input_counts>();
  // Cluster events go to standard error, one line each, and to the dashboard's ring.
  auto level = events::log_level::info;
  events::parse_log_level(opts.log_level, level); // checked by check(): else info
  ptr->events = std::make_shared<events::event_log>(opts.name, event_ring_size,
                                                    &std::clog, level);
  start_outputs(sys, *ptr);
  ptr->cache = std::make_shared<routing::route_cache>();
  if (!opts.clustered())
    spawn_standalone(sys, *ptr);
  else
    spawn_member(sys, *ptr, supervision::new_incarnation());
  routing::router_config rc;
  rc.node_name = opts.name;
  rc.directory = ptr->directory;
  rc.shards = ptr->shards;
  rc.cache = ptr->cache;
  rc.request_timeout_ms = opts.request_timeout_ms;
  ptr->router = routing::spawn_router(sys, std::move(rc));
  if (ptr->supervisor_config)
    start_supervisor(sys, *ptr);
  auto ctx = std::make_shared<routing::ingest_context>();
  ctx->cache = ptr->cache;
  ctx->limits = opts.limits;
  ctx->rules = ptr->rules;
  ctx->slice_count = opts.slice_count;
  ctx->request_timeout_ms = opts.request_timeout_ms;
  ptr->ingest = std::move(ctx);
  return node{std::move(ptr)};
}
} // namespace tether
