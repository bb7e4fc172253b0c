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

/// Path of the streaming endpoint on every node.
constexpr const char* stream_path = "/v1/stream";

/// Bounds of the per-connection WebSocket write buffer, through which client frames are
/// masked: a default batch (about 45 KB) goes out in one system call, larger ones in
/// 128 KiB pieces, and 4096 connections stay below 512 MiB.
constexpr std::size_t min_write_buffer = 4 * 1024;
constexpr std::size_t max_write_buffer = 128 * 1024;

} // namespace

// -- load_session: setup --------------------------------------------------------------

load_session::load_session(net::io_context& ioc, run_context& ctx, session_observer& observer,
                           std::uint32_t index, host_port server,
                           tcp::resolver::results_type endpoints)
  : ctx_(ctx),
    observer_(observer),
    index_(index),
    server_(std::move(server)),
    endpoints_(std::move(endpoints)),
    ws_(net::make_strand(ioc)),
    setup_timer_(ws_.get_executor()),
    send_timer_(ws_.get_executor()),
    builder_(make_batch_builder(ctx.opts, index)),
    window_(ctx.opts.inflight),
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

void load_session::start() {
  net::post(ws_.get_executor(), [self = shared_from_this()] {
    self->setup_timer_.expires_after(self->ctx_.opts.connect_timeout);
    self->setup_timer_.async_wait([self](error_code ec) { self->on_setup_timeout(ec); });
    net::async_connect(beast::get_lowest_layer(self->ws_), self->endpoints_,
                       [self](error_code ec, const tcp::endpoint&) { self->on_connect(ec); });
  });
}

void load_session::on_setup_timeout(error_code ec) {
  if (ec || welcomed_ || finished_)
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
  error_code ignored;
  beast::get_lowest_layer(ws_).set_option(tcp::no_delay{true}, ignored);
  websocket::stream_base::timeout timeouts;
  timeouts.handshake_timeout = opts.connect_timeout; // also bounds the closing handshake
  timeouts.idle_timeout = websocket::stream_base::none();
  timeouts.keep_alive_pings = false;
  ws_.set_option(timeouts);
  ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
    req.set(beast::http::field::user_agent, "tether-load/0.1");
  }));
  ws_.read_message_max(opts.max_frame_bytes);
  ws_.binary(true);
  ws_.auto_fragment(false);
  ws_.write_buffer_bytes(
    std::clamp(builder_.max_frame_bytes() + 16, min_write_buffer, max_write_buffer));
  ws_.async_handshake(server_.to_string(), stream_path,
                      [self = shared_from_this()](error_code ec) { self->on_handshake(ec); });
}

void load_session::on_handshake(error_code ec) {
  if (finished_)
    return;
  if (ec)
    return fail(ec, "WebSocket handshake");
  ws_.async_write(net::buffer(hello_), [self = shared_from_this()](error_code ec, size_t) {
    self->on_hello_written(ec);
  });
}

void load_session::on_hello_written(error_code ec) {
  if (finished_)
    return;
  if (ec)
    return fail(ec, "sending hello");
  ws_.async_read(read_buffer_, [self = shared_from_this()](error_code ec, size_t) {
    self->on_welcome(ec);
  });
}

void load_session::on_welcome(error_code ec) {
  if (finished_)
    return;
  if (ec)
    return fail(ec, "waiting for welcome");
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
  node_ = welcome.node();
  welcomed_ = true;
  setup_timer_.cancel();
  counters_.connections_ok = 1;
  report_ready(true);
  do_read();
  maybe_close(); // in case a stop arrived during the setup
}

// -- load_session: steady state -------------------------------------------------------

void load_session::begin_sending(clock::time_point start) {
  net::post(ws_.get_executor(), [self = shared_from_this(), start] {
    if (!self->welcomed_ || self->finished_)
      return;
    const auto& opts = self->ctx_.opts;
    if (opts.rate != 0)
      self->schedule_ = send_schedule{opts.rate, opts.batch, opts.connections, self->index_,
                                      start};
    self->send_end_ = start + opts.duration;
    self->sending_ = true;
    self->pump();
  });
}

void load_session::pump() {
  if (finished_ || closing_ || !sending_ || write_busy_)
    return;
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
  ++counters_.batches_sent;
  counters_.samples_sent += samples;
  ctx_.batches_sent.fetch_add(1, std::memory_order_relaxed);
  write_busy_ = true;
  ws_.async_write(net::buffer(bytes.data(), bytes.size()),
                  [self = shared_from_this()](error_code ec, size_t) { self->on_write(ec); });
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

void load_session::on_write(error_code ec) {
  write_busy_ = false;
  if (finished_)
    return;
  if (ec)
    return fail(ec, "write");
  pump();
}

void load_session::do_read() {
  ws_.async_read(read_buffer_,
                 [self = shared_from_this()](error_code ec, size_t) { self->on_read(ec); });
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
  if (closing_)
    return; // the close operation reads the rest itself
  pump();
  maybe_close();
  if (!closing_)
    do_read();
}

const tether::v1::ServerFrame* load_session::decode_frame() {
  arena_.Reset(); // keeps the initial block: no allocation for small frames
  auto* frame = google::protobuf::Arena::CreateMessage<tether::v1::ServerFrame>(&arena_);
  auto data = read_buffer_.cdata();
  bool parsed = frame->ParseFromArray(data.data(), static_cast<int>(data.size()));
  read_buffer_.consume(read_buffer_.size());
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
  auto now = clock::now();
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - entry->sent).count();
  latency_.record(static_cast<std::uint64_t>(ns > 0 ? ns : 0));
  last_ack_ = now;
  ++counters_.batches_acked;
  counters_.samples_acked += entry->samples;
  counters_.samples_accepted += ack.accepted();
  if (ack.duplicate())
    ++counters_.duplicates;
  ctx_.samples_acked.fetch_add(entry->samples, std::memory_order_relaxed);
  ctx_.batches_answered.fetch_add(1, std::memory_order_relaxed);
}

void load_session::handle_error(const tether::v1::Error& err) {
  ++counters_.errors;
  std::string text = prefix() + tether::v1::ErrorCode_Name(err.code());
  if (err.retryable())
    text += " (retryable)";
  text += ": " + err.message();
  if (err.sequence() != 0) {
    text += " [sequence " + std::to_string(err.sequence());
    if (err.sample_index() >= 0)
      text += ", sample " + std::to_string(err.sample_index());
    text += "]";
    if (window_.take(err.sequence())) {
      ++counters_.batches_failed;
      ctx_.batches_answered.fetch_add(1, std::memory_order_relaxed);
    }
  }
  ctx_.report_error(text);
}

// -- load_session: shutdown -----------------------------------------------------------

void load_session::request_stop() {
  net::post(ws_.get_executor(), [self = shared_from_this()] {
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
  ws_.async_close(websocket::close_code::normal,
                  [self = shared_from_this()](error_code ec) { self->on_close(ec); });
}

void load_session::on_close(error_code) {
  // A failed closing handshake loses nothing: every batch was answered before closing.
  finish();
}

void load_session::abort() {
  net::post(ws_.get_executor(), [self = shared_from_this()] {
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
  if (setup_timed_out_)
    return fail(std::string{"timed out after "}
                + std::to_string(ctx_.opts.connect_timeout.count()) + " ms during " + what);
  fail(std::string{what} + ": " + ec.message());
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
  beast::get_lowest_layer(ws_).close(ignored);
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
  counters_.batches_unacked = window_.size();
  report_ready(false); // no-op when already reported
  observer_.on_session_finished(index_);
}

} // namespace tether::tools::load
