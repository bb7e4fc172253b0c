#include "load_run.hpp"

#include "tether-load/route_plan.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <random>
#include <thread>

namespace tether::tools::load {

namespace net = boost::asio;
using boost::system::error_code;
using tcp = net::ip::tcp;

namespace {

constexpr std::chrono::seconds progress_interval{1};

double seconds_between(load_run::clock::time_point from, load_run::clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

} // namespace

std::string make_run_id() {
  std::random_device rd;
  std::uniform_int_distribution<std::uint32_t> dist;
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%08x", dist(rd));
  return buf;
}

load_run::load_run(const load_options& opts, std::shared_ptr<boost::asio::ssl::context> tls)
  : opts_(opts),
    tls_(std::move(tls)),
    ioc_(static_cast<int>(opts.threads)),
    strand_(net::make_strand(ioc_)),
    deadline_timer_(strand_),
    drain_timer_(strand_),
    progress_timer_(strand_),
    signals_(strand_, SIGINT, SIGTERM) {
  // nop
}

load_run::~load_run() = default;

result<load_totals> load_run::run() {
  tcp::resolver resolver{ioc_};
  auto servers = opts_.servers;
  if (opts_.routed) {
    // Every node's gateway is a target: node n's connections write there first.
    auto table = fetch_route_table(opts_.servers.front(), opts_.token, opts_.connect_timeout,
                                   tls_);
    if (!table)
      return fail(table.error());
    servers = table->gateways;
    auto nodes = static_cast<std::uint32_t>(servers.size());
    auto inflight = std::max<std::uint32_t>(1, (opts_.inflight + nodes - 1) / nodes);
    for (auto& c : plan_routed(opts_, *table))
      routes_.push_back(session_route{c.producer, c.node, std::move(c.ids), inflight});
    if (!opts_.quiet)
      std::cerr << "routed: slice table version " << table->version << ", " << nodes
                << " nodes, " << routes_.size() << " connections\n";
  }
  for (const auto& server : servers) {
    error_code ec;
    auto endpoints = resolver.resolve(server.host, std::to_string(server.port), ec);
    if (ec)
      return fail("cannot resolve " + server.host + ": " + ec.message());
    targets_.push_back({server, std::move(endpoints)});
  }
  // The reader's node: the first --server (a routed run's targets are in table order).
  error_code reader_ec;
  auto reader = resolver.resolve(opts_.servers.front().host,
                                 std::to_string(opts_.servers.front().port), reader_ec);
  if (reader_ec)
    return fail("cannot resolve " + opts_.servers.front().host + ": " + reader_ec.message());
  ctx_ = std::make_unique<run_context>(opts_, make_run_id());
  ctx_->tls = tls_;
  if (opts_.visible_keys > 0) {
    auto map = output_map::of(opts_);
    tracker_ = std::make_unique<visibility_tracker>(map, map.spread(opts_.visible_keys));
    ctx_->tracker = tracker_.get();
    observer_ = std::make_shared<observer_session>(ioc_, *ctx_, *this, reader, *tracker_);
  }
  if (routes_.empty()) {
    sessions_.reserve(opts_.connections);
    for (std::uint32_t i = 0; i < opts_.connections; ++i)
      sessions_.push_back(std::make_shared<load_session>(ioc_, *ctx_, *this, i, targets_));
  } else {
    sessions_.reserve(routes_.size());
    for (std::uint32_t i = 0; i < routes_.size(); ++i)
      sessions_.push_back(
        std::make_shared<load_session>(ioc_, *ctx_, *this, i, targets_, &routes_[i]));
  }
  signals_.async_wait([this](error_code ec, int sig) { on_signal(ec, sig); });
  if (observer_)
    observer_->start();
  for (auto& session : sessions_)
    session->start();
  std::vector<std::thread> extra;
  for (std::uint32_t i = 1; i < opts_.threads; ++i)
    extra.emplace_back([this] { ioc_.run(); });
  ioc_.run();
  for (auto& thread : extra)
    thread.join();
  // Every handler has run: the sessions' results are safe to read.
  load_totals totals;
  totals.sessions = static_cast<std::uint32_t>(sessions_.size());
  clock::time_point last_ack{};
  for (const auto& session : sessions_) {
    totals.counters += session->counters();
    totals.latency.merge(session->latency());
    last_ack = std::max(last_ack, session->last_ack());
    if (totals.node.empty())
      totals.node = session->node();
    auto wanted = routes_.empty() ? opts_.inflight : routes_.front().inflight;
    if (session->counters().connections_ok != 0 && session->inflight_limit() < wanted) {
      auto limit = static_cast<std::uint32_t>(session->inflight_limit());
      if (totals.inflight_lowered_to == 0 || limit < totals.inflight_lowered_to)
        totals.inflight_lowered_to = limit;
    }
  }
  if (started_) {
    // Sending ends at stop_time_; acks may trail it. A stalled run (acks stop arriving
    // while sending is still allowed) is measured until the stop, not the last ack.
    auto end = std::max({start_time_, stop_time_, last_ack});
    totals.elapsed_seconds = seconds_between(start_time_, end);
    totals.send_seconds = seconds_between(start_time_, std::max(start_time_, stop_time_));
    // Acks of retried batches may come in the drain: the ack timeline runs until the
    // last one; a stretch without acks until the stop stays open.
    ctx_->acked.finish(end);
    totals.timeline_bucket_ms = static_cast<std::uint32_t>(ctx_->acked.bucket().count());
    totals.acked = timeline_data::of(ctx_->acked);
    if (tracker_) {
      tracker_->finish_timelines(std::max(stop_time_, observer_end_));
      take_visible_timelines(*tracker_, totals);
    }
  }
  totals.start_unix_ms = start_unix_ms_;
  if (tracker_) {
    totals.visible = tracker_->latency();
    totals.visible_keys = static_cast<std::uint32_t>(tracker_->size());
    totals.visible_unseen = tracker_->pending_total();
    totals.visible_missing = observer_->missing_keys();
    totals.reader_rtt = observer_->query_rtt();
    totals.reader_errors = observer_->errors();
  }
  return totals;
}

void load_run::on_session_ready(std::uint32_t, bool ok) {
  net::post(strand_, [this, ok] {
    ++ready_;
    if (ok)
      ++ready_ok_;
    maybe_start();
  });
}

void load_run::on_observer_ready(bool ok) {
  net::post(strand_, [this, ok] {
    observer_ready_ = true;
    observer_ok_ = ok;
    maybe_start();
  });
}

void load_run::maybe_start() {
  if (started_ || stopping_ || ready_ < sessions_.size() || (observer_ && !observer_ready_))
    return;
  if (ready_ok_ > 0 && (!observer_ || observer_ok_))
    return start_sending();
  // Nobody can write, or nobody can read what is written: end the sessions that are up.
  stop_sending();
}

void load_run::on_session_finished(std::uint32_t) {
  net::post(strand_, [this] {
    if (++finished_ == sessions_.size())
      on_writers_finished();
  });
}

void load_run::on_writers_finished() {
  if (!stopping_) {
    stopping_ = true;
    stop_time_ = clock::now();
  }
  // The writers have their answers; the reader may still have to see the last updates,
  // within its own drain bound.
  drain_timer_.cancel();
  if (observer_ && !observer_done_) {
    if (aborted_)
      observer_->abort();
    else
      observer_->drain(opts_.drain_timeout);
    return;
  }
  finish_run();
}

void load_run::on_observer_finished() {
  net::post(strand_, [this] {
    observer_done_ = true;
    observer_end_ = clock::now();
    if (finished_ == sessions_.size())
      finish_run();
  });
}

void load_run::finish_run() {
  // Nothing left to wait for: release the timers and the signal set so that run()
  // returns.
  if (done_)
    return;
  done_ = true;
  deadline_timer_.cancel();
  drain_timer_.cancel();
  progress_timer_.cancel();
  error_code ignored;
  signals_.cancel(ignored);
}

void load_run::on_budget_exhausted() {
  net::post(strand_, [this] { stop_sending(); });
}

void load_run::start_sending() {
  started_ = true;
  start_time_ = clock::now();
  start_unix_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  ctx_->acked.start(start_time_);
  ctx_->start_measuring(start_time_);
  if (tracker_)
    tracker_->start_timelines(start_time_);
  last_progress_time_ = start_time_;
  deadline_timer_.expires_after(opts_.duration);
  deadline_timer_.async_wait([this](error_code ec) {
    if (!ec)
      stop_sending();
  });
  if (!opts_.quiet)
    schedule_progress();
  if (observer_)
    observer_->begin();
  for (auto& session : sessions_)
    session->begin_sending(start_time_);
}

void load_run::stop_sending() {
  if (stopping_ || done_)
    return;
  stopping_ = true;
  stop_time_ = clock::now();
  deadline_timer_.cancel();
  for (auto& session : sessions_)
    session->request_stop();
  drain_timer_.expires_after(opts_.drain_timeout);
  drain_timer_.async_wait([this](error_code ec) {
    if (ec)
      return;
    if (!opts_.quiet)
      std::cerr << "tether-load: drain timeout: closing connections with batches in flight\n";
    abort_all();
  });
}

void load_run::abort_all() {
  if (aborted_ || done_)
    return;
  aborted_ = true;
  if (!stopping_) {
    stopping_ = true;
    stop_time_ = clock::now();
  }
  for (auto& session : sessions_)
    session->abort();
  if (observer_)
    observer_->abort();
}

void load_run::schedule_progress() {
  if (done_)
    return;
  progress_timer_.expires_at(last_progress_time_ + progress_interval);
  progress_timer_.async_wait([this](error_code ec) {
    if (!ec)
      on_progress();
  });
}

void load_run::on_progress() {
  auto now = clock::now();
  auto acked = ctx_->samples_acked.load(std::memory_order_relaxed);
  auto interval = seconds_between(last_progress_time_, now);
  auto rate = interval > 0 ? static_cast<double>(acked - last_progress_acked_) / interval : 0.0;
  auto sent = ctx_->batches_sent.load(std::memory_order_relaxed);
  auto answered = ctx_->batches_answered.load(std::memory_order_relaxed);
  std::cerr << format_progress(seconds_between(start_time_, now), rate, acked,
                               ctx_->errors.load(std::memory_order_relaxed),
                               sent > answered ? sent - answered : 0)
            << '\n';
  last_progress_time_ = now;
  last_progress_acked_ = acked;
  schedule_progress();
}

void load_run::on_signal(error_code ec, int) {
  if (ec)
    return; // cancelled at the end of the run
  if (!stopping_) {
    std::cerr << "tether-load: interrupted: stopping (again to abort)\n";
    stop_sending();
  } else {
    abort_all();
  }
  if (done_)
    return;
  signals_.async_wait([this](error_code ec, int sig) { on_signal(ec, sig); });
}

} // namespace tether::tools::load
