#include "outputs/remote_write_sender.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "prometheus/remote_write.hpp"

namespace tether::outputs {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;
using clock_type = std::chrono::steady_clock;

// -- endpoint URL ------------------------------------------------------------------

namespace {

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
         || c == '-' || c == '.' || c == '_';
}

char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size()
         && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
              return ascii_lower(x) == ascii_lower(y);
            });
}

bool fail_parse(std::string& error, std::string_view url, const std::string& why) {
  error = "invalid endpoint URL '" + std::string{url} + "': " + why;
  return false;
}

} // namespace

std::string http_endpoint::host_header() const {
  auto port_text = std::to_string(port);
  if (host.find(':') != std::string::npos)
    return "[" + host + "]:" + port_text;
  return host + ":" + port_text;
}

bool parse_http_endpoint(std::string_view url, http_endpoint& out, std::string& error) {
  for (char c : url)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return fail_parse(error, url, "contains a space or control character");
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos)
    return fail_parse(error, url, "expected http://HOST:PORT/PATH");
  auto scheme = url.substr(0, scheme_end);
  if (!iequals(scheme, "http"))
    return fail_parse(error, url,
                      "unsupported scheme '" + std::string{scheme}
                        + "' (only http is supported)");
  if (url.find('#') != std::string_view::npos)
    return fail_parse(error, url, "a fragment ('#') has no meaning in a request");
  auto rest = url.substr(scheme_end + 3);
  auto authority_end = rest.find_first_of("/?");
  auto authority = rest.substr(0, authority_end);
  auto target = authority_end == std::string_view::npos ? std::string_view{}
                                                         : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos)
    return fail_parse(error, url, "user information ('user@') is not supported");
  http_endpoint result;
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return fail_parse(error, url, "unterminated '[' in the host");
    auto literal = std::string{authority.substr(1, close - 1)};
    error_code ec;
    net::ip::make_address_v6(literal, ec);
    if (ec || literal.empty())
      return fail_parse(error, url, "'" + literal + "' is not an IPv6 address");
    result.host = std::move(literal);
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return fail_parse(error, url, "unexpected text after ']'");
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    auto colon = authority.find(':');
    auto host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
    if (host.empty())
      return fail_parse(error, url, "the host is empty");
    if (!std::all_of(host.begin(), host.end(), is_host_char))
      return fail_parse(error, url,
                        "the host '" + std::string{host}
                          + "' has a character other than letters, digits, '-', "
                            "'_' and '.' (IPv6 addresses go in brackets)");
    if (host.size() > 253)
      return fail_parse(error, url, "the host is longer than 253 characters");
    result.host = std::string{host};
  }
  if (has_port) {
    if (port_text.empty())
      return fail_parse(error, url, "the port is empty");
    if (port_text.size() > 5
        || !std::all_of(port_text.begin(), port_text.end(),
                        [](char c) { return c >= '0' && c <= '9'; }))
      return fail_parse(error, url,
                        "the port '" + std::string{port_text} + "' is not a number");
    auto port = std::stoul(std::string{port_text});
    if (port < 1 || port > 65535)
      return fail_parse(error, url,
                        "the port " + std::string{port_text}
                          + " is outside 1 to 65535");
    result.port = static_cast<uint16_t>(port);
  }
  if (target.empty())
    result.target = "/";
  else if (target.front() == '?')
    result.target = "/" + std::string{target};
  else
    result.target = std::string{target};
  out = std::move(result);
  return true;
}

// -- options -----------------------------------------------------------------------

namespace {

using std::chrono::milliseconds;

constexpr milliseconds one_hour{3'600'000};

template <class T>
bool check_bound(const char* name, T value, T min, T max, std::string& error) {
  if (value >= min && value <= max)
    return true;
  error = std::string{"remote-write option "} + name + " must be between "
          + std::to_string(min) + " and " + std::to_string(max) + ", got "
          + std::to_string(value);
  return false;
}

bool check_bound(const char* name, milliseconds value, milliseconds min,
                 milliseconds max, std::string& error) {
  if (value >= min && value <= max)
    return true;
  error = std::string{"remote-write option "} + name + " must be between "
          + std::to_string(min.count()) + " ms and " + std::to_string(max.count())
          + " ms, got " + std::to_string(value.count()) + " ms";
  return false;
}

bool check_options(const remote_write_sender_options& opts, std::string& error) {
  if (!check_bound("max_queue", opts.max_queue, size_t{1}, size_t{1'000'000}, error)
      || !check_bound("max_retries", opts.max_retries, uint32_t{0}, uint32_t{1'000},
                      error)
      || !check_bound("min_backoff", opts.min_backoff, milliseconds{1}, one_hour, error)
      || !check_bound("max_backoff", opts.max_backoff, opts.min_backoff, one_hour,
                      error)
      || !check_bound("request_timeout", opts.request_timeout, milliseconds{1},
                      one_hour, error)
      || !check_bound("drain_timeout", opts.drain_timeout, milliseconds{0}, one_hour,
                      error)
      || !check_bound("max_response_bytes", opts.max_response_bytes, size_t{1} << 10,
                      size_t{64} << 20, error))
    return false;
  const auto& ua = opts.user_agent;
  auto printable = [](char c) { return c >= 0x20 && c < 0x7f; };
  if (ua.empty() || ua.size() > 256 || !std::all_of(ua.begin(), ua.end(), printable)) {
    error = "remote-write option user_agent must be 1 to 256 printable ASCII "
            "characters";
    return false;
  }
  return true;
}

/// The start of a response body, fit for an error message: at most 200 bytes,
/// control characters as spaces, surrounding spaces trimmed.
std::string snippet(const std::string& body) {
  std::string out = body.substr(0, 200);
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      c = ' ';
  auto first = out.find_first_not_of(' ');
  if (first == std::string::npos)
    return {};
  auto last = out.find_last_not_of(' ');
  return out.substr(first, last - first + 1);
}

/// Errors that mean the peer closed or reset the connection.
bool is_connection_closed(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof
         || ec == net::error::connection_reset || ec == net::error::broken_pipe;
}

} // namespace

// -- state -------------------------------------------------------------------------

struct remote_write_sender::impl {
  /// What became of one attempt.
  enum class outcome {
    /// 2xx.
    accepted,
    /// 5xx, 429, network failure or timeout.
    retryable,
    /// Any other status.
    refused,
  };

  struct attempt_result {
    outcome kind = outcome::retryable;
    std::string error;
    /// Failed on a reused connection before any response byte: the receiver had
    /// closed the idle connection, the request never reached it.
    bool stale_connection = false;
  };

  /// What became of a batch.
  enum class fate { sent, rejected, failed, abandoned };

  /// How a wait for an asynchronous operation ended.
  enum class wait_result { done, timed_out, drained };

  impl(remote_write_sender_options options_in, http_endpoint endpoint_in)
    : options(std::move(options_in)),
      endpoint(std::move(endpoint_in)),
      rng(options.jitter_seed != 0 ? options.jitter_seed
                                   : (uint64_t{std::random_device{}()} << 32)
                                       ^ std::random_device{}()) {
    request.method(http::verb::post);
    request.target(endpoint.target);
    request.version(11);
    request.set(http::field::host, endpoint.host_header());
    request.set(http::field::user_agent, options.user_agent);
    for (const auto& header : prom::remote_write_headers)
      request.set(beast::string_view{header.name.data(), header.name.size()},
                  beast::string_view{header.value.data(), header.value.size()});
  }

  // -- shared with callers, guarded by `mutex` --

  const remote_write_sender_options options;
  const http_endpoint endpoint;

  mutable std::mutex mutex;
  /// Wakes the worker: a batch was queued or stop() was called.
  std::condition_variable work_cv;
  /// Wakes flush(): nothing is queued or in flight.
  std::condition_variable idle_cv;
  std::deque<std::string> queue;
  bool in_flight = false;
  bool started = false;
  bool stop_requested = false;
  clock_type::time_point drain_deadline = clock_type::time_point::max();
  remote_write_sender_stats counters;

  /// Serializes start() and stop(), which touch `worker`.
  std::mutex lifecycle_mutex;
  std::thread worker;

  // -- the worker's own --

  net::io_context io;
  tcp::resolver resolver{io};
  tcp::socket socket{io};
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  /// Responses read on the open connection; > 0 means the connection is reused.
  size_t responses_on_connection = 0;
  std::mt19937_64 rng;

  // -- shared state helpers --

  clock_type::time_point current_drain_deadline() const {
    std::lock_guard<std::mutex> guard{mutex};
    return drain_deadline;
  }

  bool drain_expired() const {
    return clock_type::now() >= current_drain_deadline();
  }

  void note_error(std::string text) {
    std::lock_guard<std::mutex> guard{mutex};
    counters.last_error = std::move(text);
  }

  // -- worker --

  void run() {
    for (;;) {
      std::string batch;
      {
        std::unique_lock<std::mutex> guard{mutex};
        work_cv.wait(guard, [this] { return !queue.empty() || stop_requested; });
        if (queue.empty() || (stop_requested && clock_type::now() >= drain_deadline))
          break;
        batch = std::move(queue.front());
        queue.pop_front();
        in_flight = true;
      }
      fate result;
      try {
        result = deliver(std::move(batch));
      } catch (const std::exception& ex) {
        close();
        note_error(std::string{"internal error: "} + ex.what());
        result = fate::failed;
      }
      std::lock_guard<std::mutex> guard{mutex};
      in_flight = false;
      switch (result) {
        case fate::sent:
          ++counters.sent;
          break;
        case fate::rejected:
          ++counters.rejected_4xx;
          break;
        case fate::failed:
          ++counters.failed_after_retries;
          break;
        case fate::abandoned:
          ++counters.dropped_shutdown;
          break;
      }
      if (queue.empty())
        idle_cv.notify_all();
    }
    close();
  }

  /// Sends one batch, retrying as the policy allows.
  fate deliver(std::string body) {
    request.body() = std::move(body);
    request.prepare_payload();
    for (uint32_t attempt = 0;; ++attempt) {
      auto result = attempt_once();
      if (result.kind == outcome::accepted)
        return fate::sent;
      note_error(std::move(result.error));
      if (result.kind == outcome::refused)
        return fate::rejected;
      if (drain_expired())
        return fate::abandoned;
      if (attempt >= options.max_retries)
        return fate::failed;
      {
        std::lock_guard<std::mutex> guard{mutex};
        ++counters.retries;
      }
      if (!pause(backoff(attempt)))
        return fate::abandoned;
    }
  }

  /// One attempt within one request timeout. A request that finds its kept-alive
  /// connection closed by the receiver is sent again at once on a new connection.
  attempt_result attempt_once() {
    auto deadline = clock_type::now() + options.request_timeout;
    auto result = exchange(deadline);
    if (result.stale_connection)
      result = exchange(deadline);
    return result;
  }

  /// Connects if needed, writes the request and reads the response.
  attempt_result exchange(clock_type::time_point deadline) {
    attempt_result result;
    if (!socket.is_open()) {
      result.error = connect(deadline);
      if (!result.error.empty())
        return result;
    }
    const bool reused = responses_on_connection > 0;
    error_code ec;
    bool done = false;
    http::async_write(socket, request, [&](error_code e, size_t) {
      ec = e;
      done = true;
    });
    if (auto waited = await(done, deadline); waited != wait_result::done || ec) {
      result.stale_connection = reused && waited == wait_result::done
                                && is_connection_closed(ec);
      result.error = describe("sending the request", ec, waited);
      close();
      return result;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(options.max_response_bytes);
    done = false;
    http::async_read(socket, buffer, parser, [&](error_code e, size_t) {
      ec = e;
      done = true;
    });
    auto waited = await(done, deadline);
    std::string note;
    if (waited != wait_result::done || ec) {
      if (!parser.is_header_done()) {
        result.stale_connection = reused && waited == wait_result::done
                                  && !parser.got_some() && is_connection_closed(ec);
        result.error = describe("reading the response", ec, waited);
        close();
        return result;
      }
      // The receiver has decided; the rest of its answer is not needed.
      note = " (" + describe("reading the response body", ec, waited) + ")";
      close();
    } else {
      ++responses_on_connection;
      if (!parser.get().keep_alive())
        close();
    }
    auto& response = parser.get();
    auto status = response.result_int();
    if (status >= 200 && status < 300) {
      result.kind = outcome::accepted;
      return result;
    }
    result.kind = status == 429 || (status >= 500 && status < 600) ? outcome::retryable
                                                                    : outcome::refused;
    result.error = "HTTP " + std::to_string(status);
    if (auto text = snippet(response.body()); !text.empty())
      result.error += ": " + text;
    result.error += note;
    return result;
  }

  /// Opens the connection; returns an error message or an empty string.
  std::string connect(clock_type::time_point deadline) {
    close();
    std::vector<tcp::endpoint> endpoints;
    error_code ec;
    auto address = net::ip::make_address(endpoint.host, ec);
    if (!ec) {
      endpoints.emplace_back(address, endpoint.port);
    } else {
      bool done = false;
      resolver.async_resolve(endpoint.host, std::to_string(endpoint.port),
                             [&](error_code e, tcp::resolver::results_type results) {
                               ec = e;
                               for (const auto& entry : results)
                                 endpoints.push_back(entry.endpoint());
                               done = true;
                             });
      if (auto waited = await(done, deadline); waited != wait_result::done || ec)
        return describe("resolving " + endpoint.host, ec, waited);
    }
    bool done = false;
    net::async_connect(socket, endpoints, [&](error_code e, const tcp::endpoint&) {
      ec = e;
      done = true;
    });
    if (auto waited = await(done, deadline); waited != wait_result::done || ec) {
      close();
      return describe("connecting to " + endpoint.host_header(), ec, waited);
    }
    error_code ignored;
    socket.set_option(tcp::no_delay{true}, ignored);
    return {};
  }

  /// Runs the io_context until `done`. When the request deadline or the drain
  /// deadline passes first, cancels the pending operation (closing the socket) and
  /// waits for its handler, so that no handler outlives the caller's frame.
  wait_result await(const bool& done, clock_type::time_point deadline) {
    io.restart();
    std::optional<wait_result> expired;
    while (!done) {
      if (expired) {
        io.run_one();
        continue;
      }
      auto drain = current_drain_deadline();
      auto limit = std::min(deadline, drain);
      if (clock_type::now() < limit) {
        // stop() posts to the io_context, which ends this wait early so that the
        // drain deadline is picked up.
        io.run_one_until(limit);
        continue;
      }
      expired = drain <= deadline ? wait_result::drained : wait_result::timed_out;
      resolver.cancel();
      error_code ignored;
      socket.close(ignored);
    }
    return expired.value_or(wait_result::done);
  }

  std::string describe(const std::string& step, const error_code& ec,
                       wait_result waited) const {
    switch (waited) {
      case wait_result::timed_out:
        return step + ": timed out after "
               + std::to_string(options.request_timeout.count()) + " ms";
      case wait_result::drained:
        return step + ": abandoned, the drain time of stop() ran out";
      case wait_result::done:
        break;
    }
    return step + ": " + ec.message();
  }

  void close() {
    error_code ignored;
    if (socket.is_open()) {
      socket.shutdown(tcp::socket::shutdown_both, ignored);
      socket.close(ignored);
    }
    buffer.clear();
    responses_on_connection = 0;
  }

  /// Full-jitter exponential backoff before retry `retry` (0 for the first).
  clock_type::duration backoff(uint32_t retry) {
    using std::chrono::microseconds;
    microseconds ceiling = options.min_backoff;
    const microseconds cap = options.max_backoff;
    for (uint32_t i = 0; i < retry && ceiling < cap; ++i)
      ceiling *= 2;
    ceiling = std::min(ceiling, cap);
    std::uniform_int_distribution<int64_t> pick{0, ceiling.count()};
    return microseconds{pick(rng)};
  }

  /// Waits `delay`, or less if the drain deadline comes first; returns false in the
  /// latter case.
  bool pause(clock_type::duration delay) {
    std::unique_lock<std::mutex> guard{mutex};
    const auto until = clock_type::now() + delay;
    for (;;) {
      auto limit = std::min(until, drain_deadline);
      auto now = clock_type::now();
      if (now >= drain_deadline)
        return false;
      if (now >= limit)
        return true;
      work_cv.wait_until(guard, limit);
    }
  }
};

// -- sender ------------------------------------------------------------------------

std::unique_ptr<remote_write_sender>
remote_write_sender::make(remote_write_sender_options opts, std::string& error) {
  if (!check_options(opts, error))
    return nullptr;
  http_endpoint endpoint;
  if (!parse_http_endpoint(opts.endpoint, endpoint, error))
    return nullptr;
  auto state = std::make_unique<impl>(std::move(opts), std::move(endpoint));
  // The constructor is private, which rules out make_unique.
  return std::unique_ptr<remote_write_sender>{
    new remote_write_sender(std::move(state))};
}

remote_write_sender::remote_write_sender(std::unique_ptr<impl> state)
  : impl_(std::move(state)) {
}

remote_write_sender::~remote_write_sender() {
  stop();
}

bool remote_write_sender::start() {
  auto& s = *impl_;
  std::lock_guard<std::mutex> lifecycle{s.lifecycle_mutex};
  {
    std::lock_guard<std::mutex> guard{s.mutex};
    if (s.started || s.stop_requested)
      return false;
    s.started = true;
  }
  s.worker = std::thread{[&s] { s.run(); }};
  return true;
}

bool remote_write_sender::enqueue(std::string body) {
  auto& s = *impl_;
  std::string evicted;
  bool fit = true;
  {
    std::lock_guard<std::mutex> guard{s.mutex};
    ++s.counters.enqueued;
    if (s.stop_requested) {
      ++s.counters.dropped_shutdown;
      return false;
    }
    if (s.queue.size() >= s.options.max_queue) {
      evicted = std::move(s.queue.front());
      s.queue.pop_front();
      ++s.counters.dropped_queue_full;
      fit = false;
    }
    s.queue.push_back(std::move(body));
  }
  s.work_cv.notify_one();
  return fit;
}

bool remote_write_sender::flush(std::chrono::milliseconds timeout) {
  auto& s = *impl_;
  std::unique_lock<std::mutex> guard{s.mutex};
  return s.idle_cv.wait_for(guard, timeout,
                            [&s] { return s.queue.empty() && !s.in_flight; });
}

void remote_write_sender::stop() {
  auto& s = *impl_;
  std::lock_guard<std::mutex> lifecycle{s.lifecycle_mutex};
  {
    std::lock_guard<std::mutex> guard{s.mutex};
    if (!s.stop_requested) {
      s.stop_requested = true;
      s.drain_deadline = clock_type::now() + s.options.drain_timeout;
    }
  }
  s.work_cv.notify_all();
  // Ends a wait for network I/O early so that the worker sees the drain deadline.
  net::post(s.io, [] {});
  if (s.worker.joinable())
    s.worker.join();
  {
    std::lock_guard<std::mutex> guard{s.mutex};
    s.counters.dropped_shutdown += s.queue.size();
    s.queue.clear();
  }
  s.idle_cv.notify_all();
}

remote_write_sender_stats remote_write_sender::stats() const {
  auto& s = *impl_;
  std::lock_guard<std::mutex> guard{s.mutex};
  auto result = s.counters;
  result.queue_depth = s.queue.size();
  result.in_flight = s.in_flight ? 1 : 0;
  return result;
}

const http_endpoint& remote_write_sender::endpoint() const noexcept {
  return impl_->endpoint;
}

const remote_write_sender_options& remote_write_sender::options() const noexcept {
  return impl_->options;
}

} // namespace tether::outputs
