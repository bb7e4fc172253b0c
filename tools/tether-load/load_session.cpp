#include "load_session.hpp"

#include "tether-load/visibility_tracker.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/error.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <algorithm>

namespace tether::tools::load {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using boost::system::error_code;

namespace {

/// Bounds of the per-connection WebSocket write buffer, through which client frames are
/// masked: a default batch (about 45 KB) goes out in one system call, larger ones in
/// 128 KiB pieces, and 4096 connections stay below 512 MiB.
constexpr std::size_t min_write_buffer = 4 * 1024;
constexpr std::size_t max_write_buffer = 128 * 1024;

} // namespace

// -- load_session: setup --------------------------------------------------------------

load_session::load_session(net::io_context& ioc, run_context& ctx, session_observer& observer,
                           std::uint32_t index, const std::vector<server_target>& targets,
                           const session_route* route)
  : ctx_(ctx),
    observer_(observer),
    index_(index),
    producer_(route ? route->producer : index),
    rate_share_(route && route->ids ? route->ids->share() : 1.0),
    targets_(targets),
    target_(route ? route->first_target % targets.size() : index % targets.size()),
    strand_(net::make_strand(ioc)),
    conn_(std::make_shared<connection>(strand_, ctx.tls)),
    setup_timer_(strand_),
    send_timer_(strand_),
    retry_timer_(strand_),
    reconnect_timer_(strand_),
    builder_(make_batch_builder(ctx.opts, index, route ? route->ids : nullptr)),
    window_(route ? route->inflight : ctx.opts.inflight),
    arena_([this] {
      google::protobuf::ArenaOptions options;
      options.initial_block = arena_block_.data();
      options.initial_block_size = arena_block_.size();
      return options;
    }()) {
  hello_ = make_hello(ctx.opts.producer + "-" + ctx.run_id + "-" + std::to_string(index),
                      ctx.opts.token);
}

std::string load_session::prefix() const {
  return "connection " + std::to_string(index_) + ": ";
}

bool load_session::retrying() const noexcept {
  return ctx_.opts.retry_timeout.count() > 0;
}

void load_session::start() {
  net::post(strand_, [self = shared_from_this()] { self->connect_current(); });
}

void load_session::connect_current() {
  if (finished_)
    return;
  setup_timed_out_ = false;
  setup_timer_.expires_after(ctx_.opts.connect_timeout);
  setup_timer_.async_wait([self = shared_from_this(), c = conn_](error_code ec) {
    if (c == self->conn_)
      self->on_setup_timeout(ec);
  });
  net::async_connect(beast::get_lowest_layer(conn_->ws), targets_[target_].endpoints,
                     [self = shared_from_this(), c = conn_](error_code ec, const tcp::endpoint&) {
                       if (c == self->conn_)
                         self->on_connect(ec);
                     });
}

void load_session::on_setup_timeout(error_code ec) {
  if (ec || connected_ || finished_)
    return; // cancelled, or setup finished in time
  setup_timed_out_ = true;
  close_socket(); // the pending setup step fails with operation_aborted
}

void load_session::on_connect(error_code ec) {
  if (finished_)
    return;
  if (ec)
    return fail(ec, "connect");
  const auto& opts = ctx_.opts;
  auto& ws = conn_->ws;
  ws.configure({"tether-load/0.1", opts.connect_timeout, opts.max_frame_bytes, true});
  ws.auto_fragment(false);
  ws.write_buffer_bytes(
    std::clamp(builder_.max_frame_bytes() + 16, min_write_buffer, max_write_buffer));
  ws.async_open(targets_[target_].server.to_string(), hello_, conn_->read_buffer,
                [self = shared_from_this(), c = conn_](error_code ec, const char* step) {
                  if (c != self->conn_ || self->finished_)
                    return;
                  if (ec)
                    return self->fail(ec, step);
                  self->on_welcome();
                });
}

void load_session::on_welcome() {
  const auto* frame = decode_frame();
  if (frame == nullptr)
    return fail("undecodable frame instead of a welcome");
  if (frame->has_error()) {
    const auto& err = frame->error();
    return fail("hello rejected: " + tether::v1::ErrorCode_Name(err.code()) + ": "
                + err.message());
  }
  if (!frame->has_welcome())
    return fail("expected a welcome, got frame type "
                + std::to_string(static_cast<int>(frame->frame_case())));
  const auto& welcome = frame->welcome();
  const auto& opts = ctx_.opts;
  if (welcome.max_samples_per_batch() != 0 && opts.batch > welcome.max_samples_per_batch())
    return fail("--batch " + std::to_string(opts.batch)
                + " exceeds the node's max_samples_per_batch "
                + std::to_string(welcome.max_samples_per_batch()));
  if (welcome.max_frame_bytes() != 0 && builder_.max_frame_bytes() > welcome.max_frame_bytes())
    return fail("a batch of " + std::to_string(opts.batch) + " samples takes up to "
                + std::to_string(builder_.max_frame_bytes())
                + " bytes, above the node's max_frame_bytes "
                + std::to_string(welcome.max_frame_bytes()) + "; lower --batch");
  if (welcome.max_inflight_batches() != 0 && opts.inflight > welcome.max_inflight_batches()) {
    window_.capacity(welcome.max_inflight_batches());
    ctx_.warn_once(ctx_.inflight_warned,
                   "--inflight " + std::to_string(opts.inflight)
                     + " lowered to the node's max_inflight_batches "
                     + std::to_string(welcome.max_inflight_batches()));
  }
  if (node_.empty())
    node_ = welcome.node();
  setup_timer_.cancel();
  connected_ = true;
  if (reconnecting_) {
    reconnecting_ = false;
    ++counters_.reconnects;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - lost_at_);
    ctx_.note(prefix() + "reconnected to " + targets_[target_].server.to_string() + " (node "
              + welcome.node() + ") " + std::to_string(ms.count()) + " ms after the loss; "
              + std::to_string(window_.size()) + " unanswered batches go again");
  }
  if (!welcomed_) {
    welcomed_ = true;
    counters_.connections_ok = 1;
    report_ready(true);
  }
  do_read();
  pump();
  maybe_close(); // in case a stop arrived during the setup
}

// -- load_session: steady state -------------------------------------------------------

void load_session::begin_sending(clock::time_point start) {
  net::post(strand_, [self = shared_from_this(), start] {
    if (!self->welcomed_ || self->finished_)
      return;
    const auto& opts = self->ctx_.opts;
    if (opts.rate != 0) {
      auto rate = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(static_cast<double>(opts.rate) * self->rate_share_ + 0.5));
      self->schedule_ = send_schedule{rate, opts.batch, opts.connections, self->producer_,
                                      start};
    }
    self->send_end_ = start + opts.duration;
    self->sending_ = true;
    self->pump();
  });
}

void load_session::pump() {
  if (finished_ || closing_ || !sending_ || write_busy_ || !connected_)
    return;
  if (resend_.waiting())
    return send_again(); // answered batches first, new ones after
  if (stop_requested_)
    return maybe_close();
  if (window_.full())
    return;
  auto now = clock::now();
  auto latency_from = now;
  const bool open_loop = ctx_.opts.rate != 0;
  if (open_loop) {
    auto due = schedule_.at(next_slot_);
    if (due >= send_end_)
      return; // the schedule is done; the run's deadline stops the session
    if (now < due)
      return arm_send_timer(due);
    latency_from = due;
  }
  auto samples = ctx_.budget.reserve(builder_.batch_size());
  if (samples == 0) {
    stop_requested_ = true;
    observer_.on_budget_exhausted();
    return maybe_close();
  }
  if (open_loop) {
    ++next_slot_;
    if (send_schedule::is_late(latency_from, now))
      ++counters_.batches_late;
  }
  auto sequence = ++last_sequence_;
  auto bytes = builder_.next(sequence, samples);
  if (ctx_.tracker != nullptr)
    ctx_.tracker->on_batch(builder_.ids(), latency_from);
  window_.push({sequence, latency_from, samples});
  if (retrying())
    resend_.keep(sequence, std::string_view{bytes.data(), bytes.size()});
  ++counters_.batches_sent;
  counters_.samples_sent += samples;
  ctx_.batches_sent.fetch_add(1, std::memory_order_relaxed);
  write_busy_ = true;
  conn_->ws.async_write(net::buffer(bytes.data(), bytes.size()),
                   [self = shared_from_this(), c = conn_](error_code ec, size_t) {
                     if (c == self->conn_)
                       self->on_write(ec);
                   });
}

void load_session::send_again() {
  auto now = clock::now();
  clock::time_point next{};
  auto due = resend_.pop_due(now, next);
  if (!due) {
    if (next != clock::time_point::max())
      arm_retry_timer(next);
    return;
  }
  ++counters_.retries;
  write_busy_ = true;
  conn_->ws.async_write(net::buffer(due->frame.data(), due->frame.size()),
                   [self = shared_from_this(), c = conn_](error_code ec, size_t) {
                     if (c == self->conn_)
                       self->on_write(ec);
                   });
}

void load_session::arm_send_timer(clock::time_point due) {
  // An armed timer is never later than `due`: the next batch's time only moves on when
  // that batch is sent, which needs its time to have come. A timer armed for an earlier
  // batch fires and re-arms for this one.
  if (send_timer_armed_)
    return;
  send_timer_armed_ = true;
  send_timer_.expires_at(due);
  send_timer_.async_wait([self = shared_from_this()](error_code ec) {
    self->send_timer_armed_ = false;
    if (!ec)
      self->pump();
  });
}

void load_session::arm_retry_timer(clock::time_point due) {
  if (retry_timer_armed_ && retry_timer_.expiry() <= due)
    return;
  retry_timer_armed_ = true;
  retry_timer_.expires_at(due); // cancels an armed later wait, whose handler then returns
  retry_timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (ec)
      return; // cancelled: re-armed for an earlier time, the connection lost, or the end
    self->retry_timer_armed_ = false;
    self->pump();
  });
}

void load_session::on_write(error_code ec) {
  write_busy_ = false;
  if (finished_)
    return;
  if (ec)
    return fail(ec, "write");
  pump();
}

void load_session::do_read() {
  conn_->ws.async_read(conn_->read_buffer, [self = shared_from_this(), c = conn_](error_code ec, size_t) {
    if (c == self->conn_)
      self->on_read(ec);
  });
}

void load_session::on_read(error_code ec) {
  if (ec) {
    if (closing_)
      return finish(); // the answer to our close, or an abort
    return fail(ec, "read");
  }
  if (finished_)
    return;
  const auto* frame = decode_frame();
  if (frame == nullptr) {
    ++counters_.errors;
    ctx_.report_error(prefix() + "undecodable server frame");
  } else {
    switch (frame->frame_case()) {
      case tether::v1::ServerFrame::kAck:
        handle_ack(frame->ack());
        break;
      case tether::v1::ServerFrame::kError:
        handle_error(frame->error());
        break;
      case tether::v1::ServerFrame::kWelcome:
        ++counters_.errors;
        ctx_.report_error(prefix() + "unexpected second welcome");
        break;
      default:
        break; // pongs, window updates and query results are not ours to judge
    }
  }
  if (closing_ || !connected_)
    return; // the close operation reads the rest itself; a lost connection reads no more
  pump();
  maybe_close();
  if (!closing_)
    do_read();
}

const tether::v1::ServerFrame* load_session::decode_frame() {
  arena_.Reset(); // keeps the initial block: no allocation for small frames
  auto* frame = google::protobuf::Arena::CreateMessage<tether::v1::ServerFrame>(&arena_);
  auto& buffer = conn_->read_buffer;
  auto data = buffer.cdata();
  bool parsed = frame->ParseFromArray(data.data(), static_cast<int>(data.size()));
  buffer.consume(buffer.size());
  return parsed ? frame : nullptr;
}

void load_session::handle_ack(const tether::v1::Ack& ack) {
  auto entry = window_.take(ack.sequence());
  if (!entry) {
    ++counters_.errors;
    ctx_.report_error(prefix() + "ack for sequence " + std::to_string(ack.sequence())
                      + ", which is not outstanding");
    return;
  }
  resend_.release(ack.sequence());
  auto now = clock::now();
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - entry->sent).count();
  if (ctx_.measured(entry->sent))
    latency_.record(static_cast<std::uint64_t>(ns > 0 ? ns : 0));
  last_ack_ = now;
  ++counters_.batches_acked;
  counters_.samples_acked += entry->samples;
  counters_.samples_accepted += ack.accepted();
  if (ack.duplicate())
    ++counters_.duplicates;
  ctx_.samples_acked.fetch_add(entry->samples, std::memory_order_relaxed);
  ctx_.batches_answered.fetch_add(1, std::memory_order_relaxed);
  ctx_.acked.record(now, entry->samples);
}

void load_session::handle_error(const tether::v1::Error& err) {
  auto code = tether::v1::ErrorCode_Name(err.code());
  if (err.retryable() && retrying() && err.sequence() != 0) {
    // Rule 5: send the same frame again after a backoff, while the batch is young enough.
    const auto* entry = window_.find(err.sequence());
    auto now = clock::now();
    if (entry != nullptr && now - entry->sent < ctx_.opts.retry_timeout) {
      auto delay = resend_buffer::backoff(resend_.attempts(err.sequence()));
      if (resend_.schedule(err.sequence(), now + delay)) {
        ctx_.note(prefix() + code + " for sequence " + std::to_string(err.sequence())
                  + ": sending it again in " + std::to_string(delay.count()) + " ms ("
                  + err.message() + ")");
        return;
      }
    }
  }
  ++counters_.errors;
  std::string text = prefix() + code;
  if (err.retryable())
    text += " (retryable)";
  text += ": " + err.message();
  if (err.sequence() != 0) {
    text += " [sequence " + std::to_string(err.sequence());
    if (err.sample_index() >= 0)
      text += ", sample " + std::to_string(err.sample_index());
    text += "]";
    if (window_.take(err.sequence())) {
      resend_.release(err.sequence());
      ++counters_.batches_failed;
      ctx_.batches_answered.fetch_add(1, std::memory_order_relaxed);
    }
  }
  ctx_.report_error(text);
}

void load_session::connection_lost(const std::string& what) {
  auto now = clock::now();
  if (!reconnecting_) {
    reconnecting_ = true;
    lost_at_ = now;
    reconnect_attempts_ = 0;
    ctx_.note(prefix() + "connection to " + targets_[target_].server.to_string() + " lost ("
              + what + "): reconnecting with the same producer id, "
              + std::to_string(window_.size()) + " batches unanswered");
  }
  // Replace the stream at once: handlers of the old one are stale from here on.
  close_socket();
  conn_ = std::make_shared<connection>(strand_, ctx_.tls);
  connected_ = false;
  write_busy_ = false;
  setup_timer_.cancel();
  retry_timer_.cancel();
  retry_timer_armed_ = false;
  if (now - lost_at_ >= ctx_.opts.retry_timeout)
    return fail("no node took the connection back within --retry-timeout ("
                + std::to_string(ctx_.opts.retry_timeout.count()) + " ms); last: " + what);
  // Rule 4: every unanswered batch has an unknown outcome and goes again, in order.
  resend_.schedule_all(now);
  auto delay = std::chrono::milliseconds{0};
  if (reconnect_attempts_ > 0)
    delay = std::min<std::chrono::milliseconds>(
      std::chrono::milliseconds{50} * (1u << std::min(reconnect_attempts_ - 1, 5u)),
      std::chrono::milliseconds{1000});
  ++reconnect_attempts_;
  target_ = (target_ + 1) % targets_.size();
  reconnect_timer_.expires_after(delay);
  reconnect_timer_.async_wait([self = shared_from_this(), c = conn_](error_code ec) {
    if (!ec && c == self->conn_ && !self->finished_)
      self->connect_current();
  });
}

// -- load_session: shutdown -----------------------------------------------------------

void load_session::request_stop() {
  net::post(strand_, [self = shared_from_this()] {
    self->stop_requested_ = true;
    self->send_timer_.cancel(); // nothing more to send: do not hold the run open
    self->maybe_close();
  });
}

void load_session::maybe_close() {
  if (closing_ || finished_ || !welcomed_ || !stop_requested_ || write_busy_
      || !window_.empty())
    return;
  closing_ = true;
  if (!connected_) { // everything was answered before the connection went
    close_socket();
    return finish();
  }
  conn_->ws.async_close(websocket::close_code::normal,
                   [self = shared_from_this(), c = conn_](error_code ec) {
                     if (c == self->conn_)
                       self->on_close(ec);
                   });
}

void load_session::on_close(error_code) {
  // A failed closing handshake loses nothing: every batch was answered before closing.
  finish();
}

void load_session::abort() {
  net::post(strand_, [self = shared_from_this()] {
    if (self->finished_)
      return;
    self->closing_ = true;
    self->close_socket();
    self->finish();
  });
}

void load_session::fail(error_code ec, const char* what) {
  if (finished_)
    return;
  if (ec == net::error::operation_aborted && closing_)
    return finish();
  std::string text = setup_timed_out_ ? std::string{"timed out after "}
                                          + std::to_string(ctx_.opts.connect_timeout.count())
                                          + " ms during " + what
                                      : std::string{what} + ": " + ec.message();
  // Once set up, a lost connection is taken up again elsewhere (rule 4 of section 6).
  if (welcomed_ && !closing_ && retrying())
    return connection_lost(text);
  fail(text);
}

void load_session::fail(const std::string& what) {
  if (finished_)
    return;
  ++counters_.errors;
  ctx_.report_error(prefix() + what);
  closing_ = true;
  close_socket();
  finish();
}

void load_session::close_socket() {
  error_code ignored;
  beast::get_lowest_layer(conn_->ws).close(ignored);
}

void load_session::report_ready(bool ok) {
  if (ready_reported_)
    return;
  ready_reported_ = true;
  observer_.on_session_ready(index_, ok);
}

void load_session::finish() {
  if (finished_)
    return;
  finished_ = true;
  setup_timer_.cancel();
  send_timer_.cancel();
  retry_timer_.cancel();
  reconnect_timer_.cancel();
  counters_.batches_unacked = window_.size();
  report_ready(false); // no-op when already reported
  observer_.on_session_finished(index_);
}

} // namespace tether::tools::load
