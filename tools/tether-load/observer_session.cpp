#include "observer_session.hpp"

#include "tether-load/batch_builder.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <algorithm>
#include <cmath>

namespace tether::tools::load {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using boost::system::error_code;

namespace {

/// The tick when polling without a pause between queries: picks up outputs that had
/// nothing pending when their last answer came.
constexpr std::chrono::milliseconds min_tick{1};

/// The running sample count in a series state: the total of a counter written with
/// deltas of 1, the count of a gauge.
std::uint64_t running_count(const tether::v1::SeriesState& s) {
  if (s.kind() == tether::v1::COUNTER)
    return s.total() > 0 ? static_cast<std::uint64_t>(std::llround(s.total())) : 0;
  return s.count();
}

} // namespace

observer_session::observer_session(net::io_context& ioc, run_context& ctx,
                                   observer_events& events,
                                   tcp::resolver::results_type endpoints,
                                   visibility_tracker& tracker)
  : ctx_(ctx),
    events_(events),
    endpoints_(std::move(endpoints)),
    tracker_(tracker),
    ws_(net::make_strand(ioc), ctx.tls),
    setup_timer_(ws_.get_executor()),
    tick_timer_(ws_.get_executor()) {
  hello_ = make_hello(ctx.opts.producer + "-" + ctx.run_id + "-observer", ctx.opts.token);
  slots_.resize(tracker.size());
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    tether::v1::ClientFrame frame;
    auto* q = frame.mutable_query();
    q->set_request_id(i + 1);
    q->set_key(tracker.key(i));
    slots_[i].frame = frame.SerializeAsString();
  }
}

std::uint64_t observer_session::missing_keys() const noexcept {
  return static_cast<std::uint64_t>(
    std::count_if(slots_.begin(), slots_.end(), [](const slot& s) { return !s.found; }));
}

// -- setup ------------------------------------------------------------------------------

void observer_session::start() {
  net::post(ws_.get_executor(), [self = shared_from_this()] {
    self->setup_timer_.expires_after(self->ctx_.opts.connect_timeout);
    self->setup_timer_.async_wait([self](error_code ec) { self->on_setup_timeout(ec); });
    net::async_connect(beast::get_lowest_layer(self->ws_), self->endpoints_,
                       [self](error_code ec, const tcp::endpoint&) { self->on_connect(ec); });
  });
}

void observer_session::on_setup_timeout(error_code ec) {
  if (ec || ready_reported_ || finished_)
    return;
  setup_timed_out_ = true;
  error_code ignored;
  beast::get_lowest_layer(ws_).close(ignored);
}

void observer_session::on_connect(error_code ec) {
  if (finished_)
    return;
  if (ec)
    return fail(ec, "connect");
  ws_.configure({"tether-load/0.1 observer", ctx_.opts.connect_timeout,
                 ctx_.opts.max_frame_bytes, true});
  ws_.async_open(ctx_.opts.server.to_string(), hello_, read_buffer_,
                 [self = shared_from_this()](error_code ec, const char* step) {
                   if (self->finished_)
                     return;
                   if (ec)
                     return self->fail(ec, step);
                   self->on_welcome();
                 });
}

void observer_session::on_welcome() {
  auto data = read_buffer_.cdata();
  bool parsed = frame_.ParseFromArray(data.data(), static_cast<int>(data.size()));
  read_buffer_.consume(read_buffer_.size());
  if (!parsed)
    return fail("undecodable frame instead of a welcome");
  if (frame_.has_error())
    return fail("hello rejected: " + tether::v1::ErrorCode_Name(frame_.error().code()) + ": "
                + frame_.error().message());
  if (!frame_.has_welcome())
    return fail("expected a welcome");
  welcomed_ = true;
  // The baseline: one query per tracked output; ready once all are answered (the setup
  // timer still bounds this).
  baselines_left_ = slots_.size();
  for (std::size_t i = 0; i < slots_.size(); ++i)
    query(i);
  do_read();
  if (baselines_left_ == 0)
    report_ready(true);
}

// -- polling ----------------------------------------------------------------------------

void observer_session::begin() {
  net::post(ws_.get_executor(), [self = shared_from_this()] {
    if (self->finished_ || self->closing_)
      return;
    self->polling_ = true;
    self->arm_tick();
  });
}

void observer_session::drain(std::chrono::milliseconds timeout) {
  net::post(ws_.get_executor(), [self = shared_from_this(), timeout] {
    if (self->finished_ || self->closing_ || self->draining_)
      return;
    self->draining_ = true;
    self->drain_deadline_ = clock::now() + timeout;
    self->on_tick(); // closes at once when nothing is pending
  });
}

void observer_session::arm_tick() {
  if (tick_armed_ || closing_ || finished_)
    return;
  tick_armed_ = true;
  tick_timer_.expires_after(std::max<std::chrono::milliseconds>(ctx_.opts.visible_poll, min_tick));
  tick_timer_.async_wait([self = shared_from_this()](error_code ec) {
    self->tick_armed_ = false;
    if (!ec)
      self->on_tick();
  });
}

void observer_session::on_tick() {
  if (closing_ || finished_)
    return;
  auto now = clock::now();
  if (draining_ && (tracker_.pending_total() == 0 || now >= drain_deadline_))
    return close();
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    auto& s = slots_[i];
    if (!s.in_flight && now - s.sent >= ctx_.opts.visible_poll && tracker_.pending(i))
      query(i);
  }
  arm_tick();
}

void observer_session::query(std::size_t index) {
  auto& s = slots_[index];
  s.in_flight = true;
  queue_.push_back(index);
  if (!write_busy_)
    write_next();
}

void observer_session::write_next() {
  if (queue_.empty() || closing_ || finished_)
    return;
  auto index = queue_.front();
  queue_.pop_front();
  auto& s = slots_[index];
  s.sent = clock::now();
  write_busy_ = true;
  ws_.async_write(net::buffer(s.frame),
                  [self = shared_from_this()](error_code ec, size_t) { self->on_write(ec); });
}

void observer_session::on_write(error_code ec) {
  write_busy_ = false;
  if (finished_)
    return;
  if (ec)
    return fail(ec, "write");
  if (closing_)
    return close(); // a close waiting for this write
  write_next();
}

void observer_session::do_read() {
  ws_.async_read(read_buffer_,
                 [self = shared_from_this()](error_code ec, size_t) { self->on_read(ec); });
}

void observer_session::on_read(error_code ec) {
  if (ec) {
    if (closing_)
      return finish();
    return fail(ec, "read");
  }
  if (finished_)
    return;
  auto data = read_buffer_.cdata();
  bool parsed = frame_.ParseFromArray(data.data(), static_cast<int>(data.size()));
  read_buffer_.consume(read_buffer_.size());
  if (!parsed) {
    ++errors_;
    ctx_.report_error("observer: undecodable server frame");
  } else if (frame_.has_query_result()) {
    on_answer(frame_.query_result());
  } else if (frame_.has_error()) {
    const auto& err = frame_.error();
    auto id = err.request_id();
    // UNAVAILABLE (a slice moving, a slow node) is retried by the next tick.
    if (err.code() != tether::v1::UNAVAILABLE) {
      ++errors_;
      ctx_.report_error("observer: " + tether::v1::ErrorCode_Name(err.code()) + ": "
                        + err.message());
    }
    if (id >= 1 && id <= slots_.size()) {
      auto& s = slots_[id - 1];
      s.in_flight = false;
      if (!s.baseline_read && err.code() != tether::v1::UNAVAILABLE) {
        s.baseline_read = true; // do not wait for it forever; counted as an error
        if (--baselines_left_ == 0)
          report_ready(true);
      }
    }
  }
  if (!closing_)
    do_read();
}

void observer_session::on_answer(const tether::v1::QueryResult& result) {
  auto now = clock::now();
  auto id = result.request_id();
  if (id < 1 || id > slots_.size())
    return;
  auto index = static_cast<std::size_t>(id - 1);
  auto& s = slots_[index];
  s.in_flight = false;
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - s.sent).count();
  rtt_.record(static_cast<std::uint64_t>(ns > 0 ? ns : 0));
  auto count = result.found() ? running_count(result.series()) : 0;
  if (result.found())
    s.found = true;
  if (!s.baseline_read) {
    s.baseline_read = true;
    tracker_.set_baseline(index, count);
    if (--baselines_left_ == 0)
      report_ready(true);
    return;
  }
  tracker_.on_observed(index, count, now);
  // Ask again at once when the poll interval allows; otherwise the next tick does.
  if (polling_ && now - s.sent >= ctx_.opts.visible_poll && tracker_.pending(index))
    query(index);
}

// -- shutdown ---------------------------------------------------------------------------

void observer_session::close() {
  if (finished_)
    return;
  closing_ = true;
  tick_timer_.cancel();
  if (write_busy_)
    return; // on_write comes back here
  if (!welcomed_) {
    error_code ignored;
    beast::get_lowest_layer(ws_).close(ignored);
    return finish();
  }
  ws_.async_close(websocket::close_code::normal,
                  [self = shared_from_this()](error_code) { self->finish(); });
}

void observer_session::abort() {
  net::post(ws_.get_executor(), [self = shared_from_this()] {
    if (self->finished_)
      return;
    self->closing_ = true;
    error_code ignored;
    beast::get_lowest_layer(self->ws_).close(ignored);
    self->finish();
  });
}

void observer_session::fail(error_code ec, const char* what) {
  if (finished_)
    return;
  if (ec == net::error::operation_aborted && closing_)
    return finish();
  if (setup_timed_out_)
    return fail(std::string{"timed out after "}
                + std::to_string(ctx_.opts.connect_timeout.count()) + " ms during " + what);
  fail(std::string{what} + ": " + ec.message());
}

void observer_session::fail(const std::string& what) {
  if (finished_)
    return;
  ++errors_;
  ctx_.report_error("observer: " + what);
  closing_ = true;
  error_code ignored;
  beast::get_lowest_layer(ws_).close(ignored);
  finish();
}

void observer_session::report_ready(bool ok) {
  if (ready_reported_)
    return;
  ready_reported_ = true;
  setup_timer_.cancel();
  events_.on_observer_ready(ok);
}

void observer_session::finish() {
  if (finished_)
    return;
  finished_ = true;
  setup_timer_.cancel();
  tick_timer_.cancel();
  report_ready(false);
  events_.on_observer_finished();
}

} // namespace tether::tools::load
