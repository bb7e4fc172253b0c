#include "gateway/dashboard/hub.hpp"

#include <algorithm>
#include <chrono>

#include <boost/asio/post.hpp>

#include "gateway/dashboard/snapshot_json.hpp"
#include "gateway/dashboard/sse_stream.hpp"

namespace tether::gateway::dashboard {

namespace {

/// How often pages get the nodes (and changes of the table and events).
constexpr auto tick_period = std::chrono::milliseconds(500);

/// Rates are sampled once a second; the chart covers the last five minutes.
constexpr int64_t sample_ms = 1000;
constexpr size_t history_points = 300;
constexpr size_t history_nodes = 64;

/// Messages waiting for one browser before it is disconnected.
constexpr size_t stream_queue = 32;

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::shared_ptr<const std::string> shared(std::string s) {
  return std::make_shared<const std::string>(std::move(s));
}

} // namespace

hub::hub(net::io_context& ioc, backend& be, uint32_t max_streams,
         std::chrono::milliseconds write_timeout)
  : strand_(net::make_strand(ioc)),
    timer_(strand_),
    be_(be),
    max_streams_(max_streams),
    write_timeout_(write_timeout),
    rates_(history_points, history_nodes) {
}

hub::~hub() = default;

void hub::start() {
  net::post(strand_, [self = shared_from_this()] { self->tick(); });
}

void hub::stop() {
  net::post(strand_, [self = shared_from_this()] {
    self->stopped_ = true;
    self->timer_.cancel();
    for (auto& s : self->streams_)
      s->close();
    self->streams_.clear();
  });
}

bool hub::full() const noexcept {
  return open_.load() >= max_streams_;
}

void hub::attach(plain_stream&& stream, std::shared_ptr<void> slot) {
  attach(
    make_sse_stream(std::move(stream), std::move(slot), stream_queue, write_timeout_));
}

void hub::attach(tls_stream&& stream, std::shared_ptr<void> slot) {
  attach(
    make_sse_stream(std::move(stream), std::move(slot), stream_queue, write_timeout_));
}

void hub::attach(std::shared_ptr<sse_stream> s) {
  if (open_.fetch_add(1) >= max_streams_) {
    open_.fetch_sub(1);
    return s->refuse();
  }
  s->start();
  net::post(strand_, [self = shared_from_this(), s] {
    if (self->stopped_)
      return s->close();
    self->flush_events(); // the others get what the newcomer gets whole
    self->streams_.push_back(s);
    self->welcome(s);
  });
}

void hub::schedule() {
  timer_.expires_after(tick_period);
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec && !self->stopped_)
      self->tick();
  });
}

void hub::tick() {
  prune();
  auto now = unix_ms();
  bool sample_due = now - sampled_at_ >= sample_ms - tick_period.count() / 2;
  if (!polling_ && (!streams_.empty() || sample_due))
    poll();
  if (!streams_.empty())
    poll_moves(now);
  schedule();
}

/// Reads the table, then the peers; `on_view` runs on the strand with both.
void hub::poll() {
  polling_ = true;
  auto self = shared_from_this();
  be_.table([self](status st, assignment_table t) {
    if (!st) {
      return net::post(self->strand_, [self] { self->polling_ = false; });
    }
    self->be_.peers([self, t = std::move(t)](status st, std::vector<peer_state> peers) {
      net::post(self->strand_, [self, ok = bool(st), t = std::move(t),
                                peers = std::move(peers)]() mutable {
        self->polling_ = false;
        if (!ok || self->stopped_)
          return;
        cluster_view v;
        v.table = std::move(t);
        v.peers = std::move(peers);
        self->on_view(std::move(v));
      });
    });
  });
}

/// Asks the directory leader for its moves, at most once a second and one request
/// at a time (a lost leader makes the request wait for its timeout).
void hub::poll_moves(int64_t now) {
  if (moves_polling_ || now - moves_at_ < sample_ms)
    return;
  moves_polling_ = true;
  moves_at_ = now;
  auto self = shared_from_this();
  be_.moves([self](status st, moves_state m) {
    net::post(self->strand_, [self, st = std::move(st), m = std::move(m)]() mutable {
      self->moves_polling_ = false;
      if (st) {
        self->moves_ = std::move(m);
        self->moves_error_.clear();
      } else {
        self->moves_.reset();
        self->moves_error_ = st.message;
      }
    });
  });
}

void hub::on_view(cluster_view&& v) {
  v.self = be_.options().name;
  v.unix_ms = unix_ms();
  v.clustered = be_.clustered();
  if (v.unix_ms - sampled_at_ >= sample_ms - tick_period.count() / 2) {
    sampled_at_ = v.unix_ms;
    for (auto& p : v.peers)
      if (p.connected)
        rates_.observe(p.name, v.unix_ms, p.samples_applied, p.windows_closed);
  }
  if (streams_.empty())
    return;
  if (!table_message_ || v.table.version != table_version_) {
    table_version_ = v.table.version;
    table_message_ = shared(table_event(v.table));
    broadcast(table_message_);
  }
  flush_events();
  v.moves = moves_;
  v.moves_error = moves_error_;
  broadcast(shared(nodes_event(v, rates_)));
}

/// Sends the events recorded since the last flush to every stream.
void hub::flush_events() {
  auto xs = be_.events_since(events_seq_);
  if (xs.empty())
    return;
  events_seq_ = xs.back().seq;
  if (!streams_.empty())
    broadcast(shared(events_event(xs)));
}

void hub::broadcast(const std::shared_ptr<const std::string>& message) {
  for (auto& s : streams_)
    s->send(message);
}

/// What a page that just connected needs before the next tick.
void hub::welcome(const std::shared_ptr<sse_stream>& s) {
  if (table_message_)
    s->send(table_message_);
  s->send(shared(history_event(rates_)));
  auto xs = be_.events_since(0);
  // Later ones go to every stream with the next flush.
  xs.erase(std::remove_if(xs.begin(), xs.end(),
                          [this](auto& e) { return e.seq > events_seq_; }),
           xs.end());
  if (!xs.empty())
    s->send(shared(events_event(xs)));
}

void hub::prune() {
  auto before = streams_.size();
  streams_.erase(std::remove_if(streams_.begin(), streams_.end(),
                                [](auto& s) { return s->closed(); }),
                 streams_.end());
  open_.fetch_sub(static_cast<uint32_t>(before - streams_.size()));
}

} // namespace tether::gateway::dashboard
