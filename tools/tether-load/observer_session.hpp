#pragma once

#include "common/latency_histogram.hpp"
#include "tether-load/run_context.hpp"
#include "tether-load/visibility_tracker.hpp"

#include "wire/tether.pb.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "common/ws_client.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace tether::tools::load {

/// Receives the observer's lifecycle events; called on the observer's strand.
class observer_events {
public:
  virtual ~observer_events() = default;

  /// The observer read every tracked output's count before the run (`ok`), or failed.
  /// Called exactly once.
  virtual void on_observer_ready(bool ok) = 0;

  /// The observer's connection is gone. Called exactly once, after `on_observer_ready`.
  virtual void on_observer_finished() = 0;
};

/// The reader of a run's write-to-visible measurement (`--visible-keys`): one more
/// WebSocket connection that follows the tracked outputs of a `visibility_tracker` by
/// `query`s (docs/protocol.md section 14) of their running state.
///
/// It says hello as PREFIX-RUNID-observer, queries every tracked output once for the
/// baseline (the count before the run) and reports ready. Once polling begins, it
/// queries a tracked output whenever the tracker has updates of it that are not visible
/// yet, no query of it is outstanding and `--visible-poll` has passed since its last
/// query; each answer's running count (counter `total`, gauge `count`) goes to the
/// tracker stamped with the time the answer arrived. After `drain` it stops as soon as
/// every update is visible, or when the drain timeout ends.
///
/// Why queries and not subscriptions: a subscription delivers a series only when one of
/// its windows closes, `window-ms + lateness-ms` (15 s by default) after the window
/// opened, so it measures the window length, not the system. A query answers with the
/// running state the node has applied, which is what a reader of the series sees.
///
/// Thread safety: the public functions may be called from any thread; all work runs on
/// the observer's strand. The accessors for results may be used only after the
/// io_context has stopped running.
class observer_session : public std::enable_shared_from_this<observer_session> {
public:
  using tcp = boost::asio::ip::tcp;
  using clock = std::chrono::steady_clock;

  observer_session(boost::asio::io_context& ioc, run_context& ctx, observer_events& events,
                   tcp::resolver::results_type endpoints, visibility_tracker& tracker);

  /// Connects, says hello and reads the baselines within the connect timeout.
  void start();

  /// Starts following the tracked outputs.
  void begin();

  /// No more updates will come: closes once all are visible, at the latest after
  /// `timeout`.
  void drain(std::chrono::milliseconds timeout);

  /// Closes now.
  void abort();

  /// Round trip of every query answered, in nanoseconds: the reader's own delay.
  const latency_histogram& query_rtt() const noexcept {
    return rtt_;
  }

  /// Tracked outputs that no answer ever showed as existing.
  std::uint64_t missing_keys() const noexcept;

  /// Errors: connection failures and error frames.
  std::uint64_t errors() const noexcept {
    return errors_;
  }

private:
  struct slot {
    std::string frame;        ///< serialized `query` of the output
    clock::time_point sent{}; ///< when the outstanding (or last) query went out
    bool in_flight = false;
    bool baseline_read = false;
    bool found = false;
  };

  void on_connect(boost::system::error_code ec);
  /// The server's first message is in the read buffer: its welcome, or why not.
  void on_welcome();
  void on_setup_timeout(boost::system::error_code ec);
  void do_read();
  void on_read(boost::system::error_code ec);
  void on_answer(const tether::v1::QueryResult& result);
  void query(std::size_t index);
  void write_next();
  void on_write(boost::system::error_code ec);
  void arm_tick();
  void on_tick();
  void close();
  void fail(boost::system::error_code ec, const char* what);
  void fail(const std::string& what);
  void report_ready(bool ok);
  void finish();

  run_context& ctx_;
  observer_events& events_;
  tcp::resolver::results_type endpoints_;
  visibility_tracker& tracker_;
  ws_client ws_;
  boost::asio::steady_timer setup_timer_;
  boost::asio::steady_timer tick_timer_;
  boost::beast::flat_buffer read_buffer_;
  tether::v1::ServerFrame frame_;
  std::string hello_;
  std::vector<slot> slots_;
  std::deque<std::size_t> queue_; ///< slots whose query waits for the socket
  std::size_t baselines_left_ = 0;
  latency_histogram rtt_;
  std::uint64_t errors_ = 0;
  clock::time_point drain_deadline_{};
  bool welcomed_ = false;
  bool ready_reported_ = false;
  bool polling_ = false;
  bool draining_ = false;
  bool write_busy_ = false;
  bool tick_armed_ = false;
  bool closing_ = false;
  bool finished_ = false;
  bool setup_timed_out_ = false;
};

} // namespace tether::tools::load
