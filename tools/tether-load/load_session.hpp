#pragma once

#include "common/latency_histogram.hpp"
#include "tether-load/batch_builder.hpp"
#include "tether-load/inflight_window.hpp"
#include "tether-load/load_options.hpp"
#include "tether-load/load_report.hpp"
#include "tether-load/run_context.hpp"
#include "tether-load/send_schedule.hpp"

#include "wire/tether.pb.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <google/protobuf/arena.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace tether::tools::load {

/// Receives a session's lifecycle events; called on the session's strand.
class session_observer {
public:
  virtual ~session_observer() = default;

  /// The session finished its setup: `ok` when the welcome arrived and the session can
  /// send. Called exactly once per session.
  virtual void on_session_ready(std::uint32_t index, bool ok) = 0;

  /// The session's connection is gone and it will do nothing more. Called exactly once,
  /// after `on_session_ready`.
  virtual void on_session_finished(std::uint32_t index) = 0;

  /// A session found the sample budget spent.
  virtual void on_budget_exhausted() = 0;
};

/// One producer connection: connects to ws://SERVER/v1/stream, says hello, waits for the
/// welcome, then pipelines write batches (at most `--inflight` unanswered) until told to
/// stop, waits for the outstanding answers and closes the WebSocket cleanly.
///
/// Closed loop (no `--rate`): a batch goes out whenever the window has room and no write
/// is pending. Open loop: batch `n` is due at its `send_schedule` time and waits on a
/// timer until then; one that is due but held back (window full, write pending) goes out
/// as soon as it can, and its latency counts from the scheduled time either way. No batch
/// due at or after the end of `--duration` is sent.
///
/// Thread safety: the public functions may be called from any thread; all work runs on
/// the session's own strand. The accessors for results may be used only after the
/// io_context has stopped running.
class load_session : public std::enable_shared_from_this<load_session> {
public:
  using tcp = boost::asio::ip::tcp;
  using clock = std::chrono::steady_clock;

  /// A session writing to `server` (one of `--server`), resolved to `endpoints`.
  load_session(boost::asio::io_context& ioc, run_context& ctx, session_observer& observer,
               std::uint32_t index, host_port server, tcp::resolver::results_type endpoints);

  /// Connects and performs the handshake, hello and welcome within the connect timeout.
  void start();

  /// Starts sending batches (after `on_session_ready(index, true)`); `start` is the run's
  /// common start, from which the open-loop schedule and the end of sending count.
  void begin_sending(clock::time_point start);

  /// Stops sending new batches; the session closes once every batch is answered.
  void request_stop();

  /// Closes the connection now; unanswered batches stay counted as unacked.
  void abort();

  const load_counters& counters() const noexcept {
    return counters_;
  }

  const latency_histogram& latency() const noexcept {
    return latency_;
  }

  /// Time of the last ack, or the epoch of `clock` if none arrived.
  clock::time_point last_ack() const noexcept {
    return last_ack_;
  }

  /// Node name from the welcome.
  const std::string& node() const noexcept {
    return node_;
  }

  /// Unanswered batches allowed: `--inflight`, or less if the node's welcome said so.
  std::size_t inflight_limit() const noexcept {
    return window_.capacity();
  }

private:
  void on_connect(boost::system::error_code ec);
  void on_handshake(boost::system::error_code ec);
  void on_hello_written(boost::system::error_code ec);
  void on_welcome(boost::system::error_code ec);
  void on_setup_timeout(boost::system::error_code ec);
  void do_read();
  void on_read(boost::system::error_code ec);
  const tether::v1::ServerFrame* decode_frame();
  void handle_ack(const tether::v1::Ack& ack);
  void handle_error(const tether::v1::Error& err);
  void pump();
  void arm_send_timer(clock::time_point due);
  void on_write(boost::system::error_code ec);
  void maybe_close();
  void on_close(boost::system::error_code ec);
  void fail(boost::system::error_code ec, const char* what);
  void fail(const std::string& what);
  void report_ready(bool ok);
  void finish();
  void close_socket();
  std::string prefix() const;

  run_context& ctx_;
  session_observer& observer_;
  const std::uint32_t index_;
  host_port server_;
  tcp::resolver::results_type endpoints_;
  boost::beast::websocket::stream<tcp::socket> ws_;
  boost::asio::steady_timer setup_timer_;
  /// Open loop: waits for the next batch's scheduled time.
  boost::asio::steady_timer send_timer_;
  boost::beast::flat_buffer read_buffer_;
  std::string hello_;
  batch_builder builder_;
  inflight_window window_;
  /// Server frames are decoded into an arena whose first block lives here and which is
  /// reset before each decode, so that receiving acks does not allocate.
  alignas(std::max_align_t) std::array<char, 8 * 1024> arena_block_;
  google::protobuf::Arena arena_;
  std::uint64_t last_sequence_ = 0;
  /// Open loop: the schedule, the number of batches sent so far (= the index of the next
  /// batch in the schedule) and the time from which no batch is due any more.
  send_schedule schedule_;
  std::uint64_t next_slot_ = 0;
  clock::time_point send_end_{};
  load_counters counters_;
  latency_histogram latency_;
  clock::time_point last_ack_{};
  std::string node_;
  bool ready_reported_ = false;
  bool welcomed_ = false;
  bool sending_ = false;
  bool stop_requested_ = false;
  bool write_busy_ = false;
  bool send_timer_armed_ = false;
  bool closing_ = false;
  bool finished_ = false;
  bool setup_timed_out_ = false;
};

} // namespace tether::tools::load
