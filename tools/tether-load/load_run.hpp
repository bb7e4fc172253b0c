#pragma once

#include "tether-load/load_options.hpp"
#include "tether-load/load_report.hpp"
#include "tether-load/load_session.hpp"
#include "tether-load/observer_session.hpp"
#include "tether-load/visibility_tracker.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <memory>
#include <vector>

namespace tether::tools::load {

/// Drives one benchmark run: resolves the server, connects every session, starts them
/// together once all are set up (so the measured interval excludes connection setup),
/// stops sending at the duration or sample limit or on SIGINT/SIGTERM, waits up to the
/// drain timeout for outstanding acks (a second signal aborts at once) and collects
/// the totals. With `--visible-keys` an `observer_session` reads the baselines before
/// the start, follows the tracked outputs while the sessions write, and after the last
/// session finished waits up to the drain timeout for the remaining updates.
/// Thread safety: `run` may be called once, from one thread.
class load_run final : public session_observer, public observer_events {
public:
  using clock = std::chrono::steady_clock;

  /// `tls`: the client context for `wss://` servers (null for plain ones).
  explicit load_run(const load_options& opts,
                    std::shared_ptr<boost::asio::ssl::context> tls = nullptr);

  ~load_run() override;

  /// Runs to completion and returns the totals. Fails only when the server address
  /// cannot be resolved; everything else is reported in the totals.
  result<load_totals> run();

  void on_session_ready(std::uint32_t index, bool ok) override;
  void on_session_finished(std::uint32_t index) override;
  void on_budget_exhausted() override;
  void on_observer_ready(bool ok) override;
  void on_observer_finished() override;

private:
  void maybe_start();
  void on_writers_finished();
  void finish_run();
  void start_sending();
  void stop_sending();
  void abort_all();
  void schedule_progress();
  void on_progress();
  void on_signal(boost::system::error_code ec, int signal);

  const load_options& opts_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  boost::asio::io_context ioc_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer deadline_timer_;
  boost::asio::steady_timer drain_timer_;
  boost::asio::steady_timer progress_timer_;
  boost::asio::signal_set signals_;
  std::unique_ptr<run_context> ctx_;
  /// The nodes of `--server`, resolved; sessions move over them after a lost connection.
  std::vector<server_target> targets_;
  std::vector<std::shared_ptr<load_session>> sessions_;
  /// `--routed`: the connection of session `i` (its node is a target of `targets_`).
  std::vector<session_route> routes_;
  std::unique_ptr<visibility_tracker> tracker_;
  std::shared_ptr<observer_session> observer_;
  bool observer_ready_ = false;
  bool observer_ok_ = false;
  bool observer_done_ = false;
  std::uint32_t ready_ = 0;
  std::uint32_t ready_ok_ = 0;
  std::uint32_t finished_ = 0;
  bool started_ = false;
  bool stopping_ = false;
  bool aborted_ = false;
  /// Every session finished: nothing may re-arm a timer or the signal set any more.
  bool done_ = false;
  clock::time_point start_time_{};
  std::int64_t start_unix_ms_ = 0;
  clock::time_point stop_time_{};
  /// When the reader finished (its last observation is at most this late).
  clock::time_point observer_end_{};
  clock::time_point last_progress_time_{};
  std::uint64_t last_progress_acked_ = 0;
};

/// A random 8-hex-digit run id that keeps producer ids of separate runs apart.
std::string make_run_id();

} // namespace tether::tools::load
