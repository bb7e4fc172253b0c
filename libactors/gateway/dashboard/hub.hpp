#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "gateway/backend.hpp"
#include "gateway/dashboard/rate_history.hpp"
#include "gateway/tls_stream.hpp"

namespace tether::gateway::dashboard {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class sse_stream;
struct cluster_view;

/// The path of the dashboard's event stream.
constexpr std::string_view stream_path = "/v1/dashboard/stream";

/// Feeds every dashboard open on this node from one poll of the node, whatever the
/// number of pages: every `tick` it reads the directory table and the peers (and,
/// every second, the directory leader's moves), and sends each stream the table
/// when its version changed, the nodes, and the cluster events recorded since the
/// last tick. Without streams it only samples the rates, once a second, so that a
/// page opened later shows the last minutes. At most `max_streams` streams at once;
/// one more is answered 503. A write to a stream that takes longer than
/// `write_timeout` closes that stream. Runs on its own strand. Thread-safe.
class hub : public std::enable_shared_from_this<hub> {
public:
  hub(net::io_context& ioc, backend& be, uint32_t max_streams,
      std::chrono::milliseconds write_timeout);
  ~hub();

  /// Starts polling.
  void start();

  /// Stops polling and closes every stream.
  void stop();

  /// Whether the node serves as many streams as it takes (a hint: `attach` decides).
  bool full() const noexcept;

  /// Takes over a connection that asked for the stream; `slot` is its place among
  /// the node's open connections.
  void attach(plain_stream&& stream, std::shared_ptr<void> slot);

  /// The same for a connection on a TLS port.
  void attach(tls_stream&& stream, std::shared_ptr<void> slot);

private:
  void schedule();
  void tick();
  void poll();
  void poll_moves(int64_t now);
  void on_view(cluster_view&& v);
  void flush_events();
  void broadcast(const std::shared_ptr<const std::string>& message);
  void welcome(const std::shared_ptr<sse_stream>& s);
  void prune();
  void attach(std::shared_ptr<sse_stream> s);

  net::strand<net::io_context::executor_type> strand_;
  net::steady_timer timer_;
  backend& be_;
  uint32_t max_streams_;
  std::chrono::milliseconds write_timeout_;
  std::atomic<uint32_t> open_{0};
  std::vector<std::shared_ptr<sse_stream>> streams_;
  rate_history rates_;
  bool stopped_ = false;
  bool polling_ = false;
  bool moves_polling_ = false;
  int64_t moves_at_ = 0;
  int64_t sampled_at_ = 0;
  std::optional<moves_state> moves_;
  std::string moves_error_;
  uint64_t table_version_ = 0;
  std::shared_ptr<const std::string> table_message_;
  uint64_t events_seq_ = 0;
};

} // namespace tether::gateway::dashboard
