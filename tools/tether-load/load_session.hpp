#pragma once

#include "common/latency_histogram.hpp"
#include "common/ws_client.hpp"
#include "tether-load/batch_builder.hpp"
#include "tether-load/inflight_window.hpp"
#include "tether-load/load_options.hpp"
#include "tether-load/load_report.hpp"
#include "tether-load/resend_buffer.hpp"
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
#include <vector>

namespace tether::tools::load {

/// A node a session may write to: one `--server` and its resolved endpoints.
struct server_target {
  host_port server;
  boost::asio::ip::tcp::resolver::results_type endpoints;
};

/// What a routed connection (`--routed`) does differently: the target it writes to first
/// (its node), the ids it writes, its window, and the producer (`--connections` index)
/// whose share of `--rate` it sends.
struct session_route {
  std::uint32_t producer = 0;
  std::size_t first_target = 0;
  std::shared_ptr<const id_subset> ids;
  std::uint32_t inflight = 1;
};

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
/// Retries (docs/protocol.md section 6, unless `--retry-timeout 0`): a batch answered by
/// a retryable error (UNAVAILABLE) is sent again unchanged after a backoff
/// (`resend_buffer`); when the connection is lost after the welcome, the session
/// connects to the next of `--server` (round robin, with a backoff from the second
/// attempt), says hello with the same producer id and sends every unanswered batch
/// again, in sequence order, before any new one. A batch still unanswered
/// `--retry-timeout` after its send fails, and so does the session when no node takes
/// it back within that time. Latency of a retried batch counts from its first send.
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

  /// A session writing first to `targets[index % targets.size()]`, or with `route` to
  /// `targets[route->first_target]` (and after a lost connection to the next ones).
  /// `targets` must outlive the session.
  load_session(boost::asio::io_context& ioc, run_context& ctx, session_observer& observer,
               std::uint32_t index, const std::vector<server_target>& targets,
               const session_route* route = nullptr);

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
  /// One connection: the WebSocket and the buffer its reads fill.
  struct connection {
    explicit connection(const boost::asio::strand<boost::asio::io_context::executor_type>& ex,
                        std::shared_ptr<boost::asio::ssl::context> tls)
      : ws(ex, std::move(tls)) {}
    ws_client ws;
    boost::beast::flat_buffer read_buffer;
  };

  void connect_current();
  void on_connect(boost::system::error_code ec);
  /// The server's first message is in the read buffer: its welcome, or why not.
  void on_welcome();
  void on_setup_timeout(boost::system::error_code ec);
  void do_read();
  void on_read(boost::system::error_code ec);
  const tether::v1::ServerFrame* decode_frame();
  void handle_ack(const tether::v1::Ack& ack);
  void handle_error(const tether::v1::Error& err);
  void pump();
  void send_again();
  void arm_send_timer(clock::time_point due);
  void arm_retry_timer(clock::time_point due);
  void connection_lost(const std::string& what);
  bool retrying() const noexcept;
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
  /// The run's connection this session is (its own index), or the producer it writes a
  /// part of (`--routed`), and that part of the producer's rate.
  std::uint32_t producer_;
  double rate_share_ = 1.0;
  const std::vector<server_target>& targets_;
  /// The target of the current connection.
  std::size_t target_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  /// The current connection. A lost one is replaced at once by a fresh one, so that
  /// handlers of the old one (each holds the connection it was started on) see that
  /// they are stale and do nothing.
  std::shared_ptr<connection> conn_;
  boost::asio::steady_timer setup_timer_;
  /// Open loop: waits for the next batch's scheduled time.
  boost::asio::steady_timer send_timer_;
  /// Waits for the next batch to send again.
  boost::asio::steady_timer retry_timer_;
  /// Waits before the next reconnect attempt.
  boost::asio::steady_timer reconnect_timer_;
  resend_buffer resend_;
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
  /// The first welcome arrived (the session was set up once).
  bool welcomed_ = false;
  /// The current connection is welcomed and usable.
  bool connected_ = false;
  /// The connection was lost and a new one is being set up.
  bool reconnecting_ = false;
  clock::time_point lost_at_{};
  std::uint32_t reconnect_attempts_ = 0;
  bool retry_timer_armed_ = false;
  bool sending_ = false;
  bool stop_requested_ = false;
  bool write_busy_ = false;
  bool send_timer_armed_ = false;
  bool closing_ = false;
  bool finished_ = false;
  bool setup_timed_out_ = false;
};

} // namespace tether::tools::load
