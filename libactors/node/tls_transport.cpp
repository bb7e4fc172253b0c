// The scribe, doorman and middleman actor below follow CAF 0.17.6's
// libcaf_openssl/src/openssl/middleman_actor.cpp (Copyright 2011-2018 Dominik
// Charousset, BSD 3-Clause). What differs: the TLS sessions are this project's
// (`tls_session`: no signal masking per call, read-ahead), the policy clears
// OpenSSL's error queue before every call into a session and reports handshake
// failures, streams write at once instead of waiting for a write event, and plain
// connections between nodes read ahead as the TLS ones do.
#include "node/tls_transport.hpp"

#include "events/log_limiter.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <utility>

#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/err.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/detail/socket_guard.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor_impl.hpp>
#include <caf/io/network/default_multiplexer.hpp>
#include <caf/policy/tcp.hpp>
#include <caf/io/network/doorman_impl.hpp>
#include <caf/io/network/native_socket.hpp>
#include <caf/io/network/stream.hpp>
#include <caf/io/basp_broker.hpp>

#include "node/peer_identity.hpp"
#include "node/tls_session.hpp"

namespace tether::internal {

namespace {

namespace net = caf::io::network;
using native_socket = net::native_socket;
using rw_state = net::rw_state;
using default_mpx = net::default_multiplexer;

/// Lines about connections that peers cause (refused handshakes, closed
/// impostors): at most this many per period, so a peer that connects in a loop
/// cannot fill the log (docs/operations.md, "Cluster log lines").
constexpr uint32_t peer_line_burst = 10;
constexpr auto peer_line_period = std::chrono::seconds(10);

/// What every connection of one node shares: the prefix of its log lines and the
/// limit of the lines peers cause.
struct transport_context {
  std::string node;
  caf::node_id self;
  std::shared_ptr<peer_registry> registry;
  std::shared_ptr<events::log_limiter> peer_lines
    = std::make_shared<events::log_limiter>(peer_line_burst, peer_line_period);
};

using context_ptr = std::shared_ptr<const transport_context>;
using session_ptr = std::unique_ptr<tls_session>;

/// Writes "tether: NODE: cluster: TEXT" to stderr.
void cluster_line(const std::string& node, const std::string& text) {
  std::fprintf(stderr, "tether: %s: cluster: %s\n", node.c_str(), text.c_str());
}

/// `cluster_line` for a line a peer caused, unless the node wrote `peer_line_burst`
/// such lines in the current period; the next line written first says how many
/// were dropped.
void peer_line(const transport_context& ctx, const std::string& text) {
  uint64_t suppressed = 0;
  if (!ctx.peer_lines->admit(events::log_limiter::clock::now(), suppressed))
    return;
  if (suppressed > 0)
    cluster_line(ctx.node, std::to_string(suppressed)
                             + " more lines about refused or closed connections were "
                               "dropped (at most "
                             + std::to_string(peer_line_burst) + " per "
                             + std::to_string(peer_line_period.count()) + " s)");
  cluster_line(ctx.node, text);
}

std::string peer_of(native_socket fd) {
  auto addr = net::remote_addr_of_fd(fd);
  auto port = net::remote_port_of_fd(fd);
  if (!addr || !port)
    return "an unknown address";
  return *addr + ":" + std::to_string(*port);
}

/// OpenSSL's errors of this thread since the last clear, oldest first, without
/// repeats; empties the queue.
std::string drain_errors() {
  std::string out;
  while (auto e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    std::string text = reason != nullptr ? reason : "error " + std::to_string(e);
    if (out.find(text) != std::string::npos)
      continue;
    out += out.empty() ? text : "; " + text;
  }
  return out;
}

/// Plain TCP between nodes with read-ahead. CAF's BASP broker reads a message as
/// its header, then its payload, then tries the next header: three `recv` calls per
/// message, the last one failing with EAGAIN. Here one `recv` takes whatever waits
/// in the socket (up to `ahead_size`) and later reads are served from that; a
/// `recv` that came back short found the socket empty, so the next read that finds
/// the buffer empty reports "nothing" without a system call (epoll is
/// level-triggered: bytes that arrive later wake the loop again).
class plain_policy {
public:
  static constexpr bool handshakes = false;
  static constexpr size_t ahead_size = 64 * 1024;

  rw_state read_some(size_t& result, native_socket fd, void* buf, size_t len) {
    result = 0;
    if (begin_ == end_) {
      if (drained_) {
        drained_ = false;
        return rw_state::success; // nothing now, as after EAGAIN
      }
      auto res = refill(fd);
      if (res != rw_state::success || begin_ == end_)
        return res;
    }
    auto n = std::min(len, end_ - begin_);
    std::memcpy(buf, ahead_.data() + begin_, n);
    begin_ += n;
    result = n;
    return rw_state::success;
  }

  static rw_state write_some(size_t& result, native_socket fd, const void* buf,
                             size_t len) {
    return caf::policy::tcp::write_some(result, fd, buf, len);
  }

  /// Bytes read ahead must reach the broker even after CAF's 50 reads per event.
  bool must_read_more(native_socket, size_t) const {
    return begin_ != end_;
  }

private:
  rw_state refill(native_socket fd) {
    if (ahead_.empty())
      ahead_.resize(ahead_size);
    size_t n = 0;
    auto res = caf::policy::tcp::read_some(n, fd, ahead_.data(), ahead_.size());
    begin_ = 0;
    end_ = res == rw_state::success ? n : 0;
    drained_ = res == rw_state::success && n > 0 && n < ahead_.size();
    return res;
  }

  std::vector<char> ahead_;
  size_t begin_ = 0;
  size_t end_ = 0;
  bool drained_ = false;
};

/// One stream's TLS: CAF's session, a clean error queue before every call, and
/// one line on stderr when the handshake fails.
class tls_policy {
public:
  static constexpr bool handshakes = true;

  tls_policy(session_ptr session, context_ptr ctx, std::string peer,
             bool accepted)
    : session_(std::move(session)),
      ctx_(std::move(ctx)),
      peer_(std::move(peer)),
      accepted_(accepted) {
  }

  rw_state read_some(size_t& result, native_socket, void* buf, size_t len) {
    ERR_clear_error();
    auto res = session_->read_some(result, buf, len);
    observe(res, result, true);
    if (res == rw_state::success && result > 0 && !guard(static_cast<char*>(buf), result))
      return rw_state::failure;
    return res;
  }

  rw_state write_some(size_t& result, native_socket, const void* buf, size_t len) {
    ERR_clear_error();
    auto res = session_->write_some(result, buf, len);
    observe(res, result, false);
    return res;
  }

  /// Records the session read ahead wait in its buffer, not in the socket: the
  /// stream must read on although epoll will not report them.
  bool must_read_more(native_socket, size_t) {
    return session_->pending();
  }

private:
  /// Lets the BASP guard see what the peer sent; false when the
  /// connection must close, after one line on stderr.
  bool guard(char* buf, size_t n) {
    if (!guard_)
      guard_ = std::make_unique<basp_guard>(ctx_->registry, session_->peer_names(),
                                            ctx_->self);
    std::string why;
    if (!guard_->inspect(buf, n, why)) {
      peer_line(*ctx_, "closed the connection with " + peer_ + " (certificate "
                         + names() + "): " + why);
      return false;
    }
    return true;
  }

  std::string names() const {
    std::string out;
    for (auto& n : guard_->names())
      out += (out.empty() ? "" : ", ") + n;
    return out.empty() ? "without names" : "for " + out;
  }

  /// Bytes read mean that both ends accepted the handshake (with TLS 1.3 a client
  /// finishes before the server checked its certificate, so writes do not).
  void observe(rw_state res, size_t transferred, bool read) {
    if (res == rw_state::success && transferred > 0) {
      established_ = established_ || read;
      return;
    }
    if (res != rw_state::failure) {
      return;
    }
    auto why = drain_errors();
    if (established_ || reported_)
      return; // a member went away: the supervisor reports the lost connection
    reported_ = true;
    if (why.empty())
      why = "the peer closed the connection";
    if (accepted_)
      peer_line(*ctx_, "refused a connection from " + peer_ + ": TLS handshake failed ("
                         + why + ")");
    else
      cluster_line(ctx_->node,
                   "cannot connect to " + peer_ + ": TLS handshake failed (" + why + ")");
  }

  session_ptr session_;
  context_ptr ctx_;
  std::string peer_;
  bool accepted_;
  bool established_ = false;
  bool reported_ = false;
  std::unique_ptr<basp_guard> guard_;
};

/// A session for `fd`, or null after one line on stderr saying why not.
session_ptr make_session(caf::actor_system& sys, native_socket fd, bool accepted,
                         const transport_context& ctx, const std::string& peer) {
  ERR_clear_error();
  auto& cfg = sys.config();
  tls_files files{cfg.openssl_certificate, cfg.openssl_key, cfg.openssl_cafile,
                  cfg.openssl_capath, cfg.openssl_passphrase};
  std::string why;
  // Reads the certificate, key and CA files anew for every connection, so that
  // replaced files take effect for new connections without a restart.
  auto ptr = tls_session::make(files, fd, accepted, why);
  if (ptr)
    return ptr;
  if (why.empty())
    why = drain_errors();
  if (why.empty())
    why = "no reason given";
  if (accepted)
    peer_line(ctx, "refused a connection from " + peer + ": TLS handshake failed (" + why
                     + ")");
  else
    cluster_line(ctx.node,
                 "cannot connect to " + peer + ": TLS handshake failed (" + why + ")");
  return nullptr;
}

/// CAF's stream with one change: `flush_now` first hands what is buffered to the
/// socket, and registers for write events only for what the kernel did not take.
/// CAF's own `flush` always registers, which costs two `epoll_ctl` calls and one more
/// turn of the event loop for every message a node sends.
template <class Policy>
class fast_stream : public net::stream {
public:
  template <class... Ts>
  fast_stream(default_mpx& mpx, native_socket fd, Ts&&... xs)
    : net::stream(mpx, fd), policy_(std::forward<Ts>(xs)...) {
  }

  void handle_event(net::operation op) override {
    handle_event_impl(op, policy_);
  }

  /// Writes at once while no earlier bytes wait for a write event (so the order
  /// holds), then leaves the rest to CAF's flush. A failed write is left to the
  /// event loop too: the same write fails there and closes the connection.
  void flush_now(const manager_ptr& mgr) {
    auto& buf = wr_buf();
    if (!state_.writing && !ack_writes() && !buf.empty()) {
      size_t written = 0;
      auto res = policy_.write_some(written, fd(), buf.data(), buf.size());
      if (res == rw_state::success && written > 0)
        buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(written));
    }
    flush(mgr);
  }

private:
  Policy policy_;
};

/// A connection between nodes: CAF's scribe over a `fast_stream` with `Policy`
/// (`tls_policy` or `plain_policy`).
template <class Policy>
class scribe_impl : public caf::io::scribe {
public:
  template <class... Ts>
  scribe_impl(default_mpx& mpx, native_socket sockfd, Ts&&... xs)
    : scribe(net::conn_hdl_from_socket(sockfd)),
      stream_(mpx, sockfd, std::forward<Ts>(xs)...) {
  }

  void configure_read(caf::io::receive_policy::config config) override {
    stream_.configure_read(config);
    if (!launched_)
      launch();
  }

  void ack_writes(bool enable) override {
    stream_.ack_writes(enable);
  }

  std::vector<char>& wr_buf() override {
    return stream_.wr_buf();
  }

  std::vector<char>& rd_buf() override {
    return stream_.rd_buf();
  }

  void graceful_shutdown() override {
    stream_.graceful_shutdown();
    detach(&stream_.backend(), false);
  }

  void flush() override {
    stream_.flush_now(this);
  }

  std::string addr() const override {
    auto x = net::remote_addr_of_fd(stream_.fd());
    return x ? *x : std::string{};
  }

  uint16_t port() const override {
    auto x = net::remote_port_of_fd(stream_.fd());
    return x ? *x : 0;
  }

  void launch() {
    launched_ = true;
    stream_.start(this);
    // Schedules the scribe while SSL_connect or SSL_accept still needs a turn.
    if (Policy::handshakes)
      stream_.force_empty_write(this);
  }

  void add_to_loop() override {
    stream_.activate(this);
  }

  void remove_from_loop() override {
    stream_.passivate();
  }

private:
  bool launched_ = false;
  fast_stream<Policy> stream_;
};

using tls_scribe = scribe_impl<tls_policy>;
using plain_scribe = scribe_impl<plain_policy>;

class doorman_impl : public net::doorman_impl {
public:
  doorman_impl(default_mpx& mx, native_socket sockfd, context_ptr ctx)
    : net::doorman_impl(mx, sockfd), ctx_(std::move(ctx)) {
  }

  bool new_connection() override {
    if (detached())
      return false;
    auto& dm = acceptor_.backend();
    auto fd = acceptor_.accepted_socket();
    caf::detail::socket_guard sguard{fd};
    net::nonblocking(fd, true);
    auto peer = peer_of(fd);
    auto sssn = make_session(parent()->system(), fd, true, *ctx_, peer);
    if (sssn == nullptr)
      return false;
    auto scrb = caf::make_counted<tls_scribe>(dm, fd, std::move(sssn), ctx_,
                                               std::move(peer), true);
    sguard.release(); // the scribe owns the socket
    auto hdl = scrb->hdl();
    parent()->add_scribe(std::move(scrb));
    return doorman::new_connection(&dm, hdl);
  }

private:
  context_ptr ctx_;
};

/// Accepts plain connections between nodes as `plain_scribe`s (CAF's doorman makes
/// its own scribes).
class plain_doorman : public net::doorman_impl {
public:
  using net::doorman_impl::doorman_impl;

  bool new_connection() override {
    if (detached())
      return false;
    auto& dm = acceptor_.backend();
    auto scrb = caf::make_counted<plain_scribe>(dm, acceptor_.accepted_socket());
    auto hdl = scrb->hdl();
    parent()->add_scribe(std::move(scrb));
    return doorman::new_connection(&dm, hdl);
  }
};

// -- connecting under latency ------------------------------------------------------
//
// CAF 0.17.6's BASP broker gives the context of a connection it dialed a `last_seen`
// of zero (the clock's epoch) until the first bytes from the peer arrive, and its
// heartbeat tick (every `middleman.heartbeat-interval`, 100 ms here) closes every
// connection not seen within `middleman.connection-timeout`. A dialed connection is
// therefore closed by the first tick that comes before the peer's BASP handshake:
// with a round trip above the tick interval (or the TLS handshake's round trips on
// top) every attempt fails, and a restarted node never joins. The connectors below
// hand a connection to the broker only once the peer's first bytes wait in the
// socket (TLS: after the TLS handshake), so the broker reads them at once.

/// How long a new connection may take until the peer's first bytes arrive.
constexpr std::chrono::milliseconds handshake_bound{3000};

/// Waits until `fd` has `events` or `deadline` passes; false on timeout, error or
/// hang-up without data.
bool wait_for(native_socket fd, short events,
              std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return false;
    pollfd p{fd, events, 0};
    auto n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    if ((p.revents & events) != 0)
      return true;
    if ((p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0)
      return false;
  }
}

/// Drives the client side of `session`'s TLS handshake on the non-blocking `fd`
/// to its end (without reading application data), then waits for the peer's first
/// bytes. False if either does not happen before `deadline`.
bool finish_tls_handshake(tls_session& session, native_socket fd,
                          std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    ERR_clear_error();
    switch (session.handshake()) {
      case tls_session::step::done:
        return session.pending() || wait_for(fd, POLLIN, deadline);
      case tls_session::step::want_read:
        if (!wait_for(fd, POLLIN, deadline))
          return false;
        break;
      case tls_session::step::want_write:
        if (!wait_for(fd, POLLOUT, deadline))
          return false;
        break;
      case tls_session::step::failed:
        drain_errors();
        return false;
    }
  }
}

/// The middleman actor of a node without TLS between nodes: CAF's, except that a
/// new connection is handed to the BASP broker only once the peer's first bytes
/// arrived (see above).
class plain_middleman_impl : public caf::io::middleman_actor_impl {
public:
  plain_middleman_impl(caf::actor_config& cfg, caf::actor default_broker)
    : caf::io::middleman_actor_impl(cfg, std::move(default_broker)) {
  }

  const char* name() const override {
    return "tether.middleman";
  }

protected:
  caf::expected<caf::io::scribe_ptr> connect(const std::string& host,
                                             uint16_t port) override {
    auto fd = net::new_tcp_connection(host, port);
    if (!fd)
      return std::move(fd.error());
    if (!wait_for(*fd, POLLIN, std::chrono::steady_clock::now() + handshake_bound)) {
      net::close_socket(*fd);
      return caf::sec::cannot_connect_to_node;
    }
    return caf::make_counted<plain_scribe>(mpx(), *fd);
  }

  caf::expected<caf::io::doorman_ptr> open(uint16_t port, const char* addr,
                                           bool reuse) override {
    auto fd = net::new_tcp_acceptor_impl(port, addr, reuse);
    if (!fd)
      return std::move(fd.error());
    return caf::make_counted<plain_doorman>(mpx(), *fd);
  }

private:
  default_mpx& mpx() {
    return static_cast<default_mpx&>(system().middleman().backend());
  }
};

class middleman_actor_impl : public caf::io::middleman_actor_impl {
public:
  middleman_actor_impl(caf::actor_config& cfg, caf::actor default_broker,
                       context_ptr ctx)
    : caf::io::middleman_actor_impl(cfg, std::move(default_broker)),
      ctx_(std::move(ctx)) {
  }

  const char* name() const override {
    return "tether.tls_middleman";
  }

protected:
  caf::expected<caf::io::scribe_ptr> connect(const std::string& host,
                                             uint16_t port) override {
    auto fd = net::new_tcp_connection(host, port);
    if (!fd)
      return std::move(fd.error());
    net::nonblocking(*fd, true);
    auto peer = host + ":" + std::to_string(port);
    auto sssn = make_session(system(), *fd, false, *ctx_, peer);
    if (!sssn) {
      net::close_socket(*fd);
      return caf::sec::cannot_connect_to_node;
    }
    if (!finish_tls_handshake(*sssn, *fd,
                              std::chrono::steady_clock::now() + handshake_bound)) {
      cluster_line(ctx_->node, "cannot connect to " + peer
                                 + ": no TLS handshake and greeting within "
                                 + std::to_string(handshake_bound.count()) + " ms");
      net::close_socket(*fd);
      return caf::sec::cannot_connect_to_node;
    }
    return caf::make_counted<tls_scribe>(mpx(), *fd, std::move(sssn), ctx_,
                                         std::move(peer), false);
  }

  caf::expected<caf::io::doorman_ptr> open(uint16_t port, const char* addr,
                                           bool reuse) override {
    auto fd = net::new_tcp_acceptor_impl(port, addr, reuse);
    if (!fd)
      return std::move(fd.error());
    return caf::make_counted<doorman_impl>(mpx(), *fd, ctx_);
  }

private:
  default_mpx& mpx() {
    return static_cast<default_mpx&>(system().middleman().backend());
  }

  context_ptr ctx_;
};

} // namespace

caf::io::middleman_actor spawn_tls_middleman(caf::actor_system& sys, std::string node,
                                             std::shared_ptr<peer_registry> registry) {
  auto ctx = std::make_shared<transport_context>();
  ctx->node = std::move(node);
  ctx->self = sys.node();
  ctx->registry = std::move(registry);
  auto broker = sys.middleman().named_broker<caf::io::basp_broker>(caf::atom("BASP"));
  // Detached, as CAF's own: connecting blocks until the peer's first bytes arrive.
  return sys.spawn<middleman_actor_impl, caf::hidden + caf::detached>(
    std::move(broker), context_ptr{std::move(ctx)});
}

caf::io::middleman_actor spawn_plain_middleman(caf::actor_system& sys) {
  auto broker = sys.middleman().named_broker<caf::io::basp_broker>(caf::atom("BASP"));
  return sys.spawn<plain_middleman_impl, caf::hidden + caf::detached>(std::move(broker));
}

} // namespace tether::internal
