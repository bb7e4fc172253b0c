#include "gateway/gateway.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <malloc.h>
#include <mutex>
#include <iostream>
#include <thread>
#include <vector>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <snappy.h>

#include "gateway/dashboard/assets.hpp"
#include "gateway/dashboard/hub.hpp"
#include "gateway/query.hpp"
#include "gateway/tls_store.hpp"
#include "gateway/write_status.hpp"
#include "gateway/ws_session.hpp"
#include "keys/series_key.hpp"
#include "keys/slicing.hpp"
#include "keys/utf8.hpp"
#include "outputs/metrics_page.hpp"
#include "prometheus/exposition.hpp"
#include "prometheus/metadata_memory.hpp"
#include "prometheus/remote_write.hpp"
#include "rules/rule_set.hpp"
#include "wire/codec.hpp"
#include "wire/keyed_batch.hpp"
#include "wire/tether.pb.h"

namespace tether::gateway {

namespace json = boost::json;
namespace websocket = beast::websocket;
namespace ssl = net::ssl;

namespace {

/// Decompressed remote-write requests above this size are followed by returning
/// freed heap memory to the system.
constexpr std::size_t trim_after_bytes = 4 << 20;

/// The answer to plain HTTP on a TLS port, in plain HTTP, so that the client's user
/// sees why (curl, a browser); nothing else is served on such a connection.
const std::string& plain_on_tls_answer() {
  static const std::string answer = [] {
    std::string body = "{\"error\":\"TLS_REQUIRED\",\"message\":\"this port speaks TLS "
                       "only: use https:// or wss://\"}\n";
    return "HTTP/1.1 400 Bad Request\r\n"
           "Server: tetherd\r\n"
           "Content-Type: application/json\r\n"
           "Connection: close\r\n"
           "Content-Length: "
           + std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  return answer;
}

/// Whether `Stream` is the TLS stream.
template <class Stream>
constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;

// -- JSON views of the operator API ----------------------------------------------

json::value state_json(const series_view& v) {
  if (!v.found)
    return nullptr;
  auto kind = v1::Kind_Name(static_cast<v1::Kind>(v.kind)); // as on the stream
  return json::object{{"kind", kind},              {"total", v.total},
                      {"last", v.last},            {"min", v.min},
                      {"max", v.max},              {"sum", v.sum},
                      {"count", v.count},          {"updated_ms", v.updated_ms}};
}

json::value followers_json(const assignment_table& t, const slice_assignment& a) {
  json::array out;
  for (auto f : a.followers)
    if (f >= 0 && static_cast<size_t>(f) < t.members.size())
      out.emplace_back(t.members[static_cast<size_t>(f)].name);
  return out;
}

json::value directory_json(const assignment_table& t) {
  json::array nodes;
  for (auto& m : t.members)
    nodes.emplace_back(m.name);
  json::array slices;
  for (uint32_t s = 0; s < t.slices.size(); ++s) {
    auto& a = t.slices[s];
    slices.emplace_back(json::object{{"slice", s},
                                     {"epoch", a.epoch},
                                     {"primary", t.primary_name(s)},
                                     {"followers", followers_json(t, a)}});
  }
  return json::object{{"version", t.version},
                      {"slice_count", t.slices.size()},
                      {"replication_factor", t.replication_factor},
                      {"nodes", std::move(nodes)},
                      {"slices", std::move(slices)}};
}

/// Primary and follower slices per member of the table.
std::vector<std::pair<uint32_t, uint32_t>> slices_per_member(const assignment_table& t) {
  std::vector<std::pair<uint32_t, uint32_t>> out(t.members.size());
  for (auto& a : t.slices) {
    if (a.primary >= 0 && static_cast<size_t>(a.primary) < out.size())
      ++out[static_cast<size_t>(a.primary)].first;
    for (auto f : a.followers)
      if (f >= 0 && static_cast<size_t>(f) < out.size())
        ++out[static_cast<size_t>(f)].second;
  }
  return out;
}

/// Load per member: slices led and followed, and their share of the mean.
json::value load_json(const assignment_table& t) {
  auto counts = slices_per_member(t);
  size_t up = 0;
  for (auto& m : t.members)
    up += m.up ? 1 : 0;
  double mean = up == 0 ? 0.0 : static_cast<double>(t.slices.size()) / up;
  json::array out;
  for (size_t i = 0; i < t.members.size(); ++i) {
    json::object o{{"node", t.members[i].name},
                   {"primary_slices", counts[i].first},
                   {"follower_slices", counts[i].second}};
    if (t.members[i].up && mean > 0)
      o["of_mean"] = counts[i].first / mean;
    else
      o["of_mean"] = nullptr;
    out.emplace_back(std::move(o));
  }
  return out;
}

/// Every member of the table, with what this node's supervisor knows of it, and
/// nodes connected but not (yet) in the table.
json::value nodes_json(const assignment_table& t, const std::vector<peer_state>& peers) {
  auto counts = slices_per_member(t);
  json::array nodes;
  auto peer_of = [&](const std::string& name) -> const peer_state* {
    for (auto& p : peers)
      if (p.name == name)
        return &p;
    return nullptr;
  };
  auto add_peer_fields = [](json::object& o, const peer_state* p) {
    o["connected"] = p != nullptr && p->connected;
    o["self"] = p != nullptr && p->self;
    if (p == nullptr) {
      o["series"] = nullptr;
      o["samples_applied"] = nullptr;
      return;
    }
    o["cluster_address"] = p->cluster;
    o["incarnation"] = p->incarnation;
    o["directory_member"] = p->directory_id;
    o["suspect"] = p->suspect;
    o["last_heard_ms"] = p->last_heard_ms;
    o["series"] = p->series;
    o["samples_applied"] = p->samples_applied;
  };
  for (size_t i = 0; i < t.members.size(); ++i) {
    auto& m = t.members[i];
    json::object o{{"name", m.name},
                   {"address", m.address},
                   {"state", m.up ? "up" : m.drained ? "drained" : "down"},
                   {"primary_slices", counts[i].first},
                   {"follower_slices", counts[i].second}};
    add_peer_fields(o, peer_of(m.name));
    nodes.emplace_back(std::move(o));
  }
  for (auto& p : peers) {
    bool listed = false;
    for (auto& m : t.members)
      listed = listed || m.name == p.name;
    if (listed)
      continue;
    json::object o{{"name", p.name},
                   {"address", p.gateway},
                   {"state", "joining"},
                   {"primary_slices", 0},
                   {"follower_slices", 0}};
    add_peer_fields(o, &p);
    nodes.emplace_back(std::move(o));
  }
  return json::object{{"version", t.version}, {"nodes", std::move(nodes)}};
}

/// The WebSocket sessions of a server, so that stopping can close them cleanly.
/// Thread-safe.
class session_registry {
public:
  void add(const std::shared_ptr<ws_session>& s) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (sessions_.size() >= 64 && (sessions_.size() & (sessions_.size() - 1)) == 0)
      sessions_.erase(std::remove_if(sessions_.begin(), sessions_.end(),
                                     [](auto& w) { return w.expired(); }),
                      sessions_.end());
    sessions_.push_back(s);
  }

  void shutdown_all() {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& w : sessions_)
      if (auto s = w.lock())
        s->shutdown();
    sessions_.clear();
  }

private:
  std::mutex mtx_;
  std::vector<std::weak_ptr<ws_session>> sessions_;
};

/// A place among the node's open connections; freeing it is the destructor's job.
/// Thread-safe.
class connection_slot {
public:
  /// A slot, or nullptr when `max` connections are open.
  static std::shared_ptr<connection_slot> take(std::atomic<uint32_t>& open,
                                               uint32_t max) {
    if (open.fetch_add(1) >= max) {
      open.fetch_sub(1);
      return nullptr;
    }
    return std::shared_ptr<connection_slot>{new connection_slot{open}};
  }

  ~connection_slot() {
    open_.fetch_sub(1);
  }

private:
  explicit connection_slot(std::atomic<uint32_t>& open) : open_(open) {
  }

  std::atomic<uint32_t>& open_;
};

/// Bytes of request bodies being received or decoded, reserved by announced length
/// before a body is read and given back by the destructor. Thread-safe.
class body_reservation {
public:
  /// A reservation, or nullptr when it would take `used` above `max`.
  static std::shared_ptr<body_reservation> take(std::atomic<uint64_t>& used,
                                                uint64_t max, uint64_t bytes) {
    auto now = used.load();
    do {
      if (now + bytes > max)
        return nullptr;
    } while (!used.compare_exchange_weak(now, now + bytes));
    return std::shared_ptr<body_reservation>{new body_reservation{used, bytes}};
  }

  ~body_reservation() {
    used_.fetch_sub(bytes_);
  }

private:
  body_reservation(std::atomic<uint64_t>& used, uint64_t bytes)
    : used_(used), bytes_(bytes) {
  }

  std::atomic<uint64_t>& used_;
  uint64_t bytes_;
};

/// What every connection of a server shares. Thread-safe.
struct shared_state {
  shared_state(const gateway_limits& l, std::shared_ptr<credential_store> c)
    : limits(l), credentials(std::move(c)), metadata(l.max_metadata_families) {
  }

  const gateway_limits limits;
  const std::shared_ptr<credential_store> credentials;
  std::atomic<uint32_t> connections{0};
  std::atomic<uint64_t> body_bytes{0};
  session_registry sessions;
  /// Feeds the dashboard's event streams; set once the node serves.
  std::shared_ptr<dashboard::hub> dashboard;
  /// Decodes remote-write requests and large WebSocket frames off the I/O threads,
  /// one at a time.
  net::thread_pool decoders{1};
  /// Metric types from remote-write metadata, for requests that carry none.
  prom::metadata_memory metadata;
};

/// A remote-write request after decoding and keying, or why it was refused.
struct remote_outcome {
  http::status code = http::status::ok;
  std::string error; ///< the JSON error code when refused
  std::string message;
  bool empty = false; ///< nothing to write (no samples besides stale markers)
  wire::keyed_batch batch;
};

/// HTTP status and error name of a remote-write body the decoder refused.
std::pair<http::status, std::string_view> remote_refusal(prom::errc code) {
  switch (code) {
    case prom::errc::too_large:
      return {http::status::payload_too_large, "FRAME_TOO_LARGE"};
    case prom::errc::too_many_series:
    case prom::errc::too_many_samples:
      return {http::status::bad_request, "TOO_MANY_SAMPLES"};
    case prom::errc::too_many_labels:
      return {http::status::bad_request, "TOO_MANY_LABELS"};
    case prom::errc::native_histograms:
      return {http::status::bad_request, "UNSUPPORTED_HISTOGRAMS"};
    default:
      return {http::status::bad_request, "MALFORMED_FRAME"};
  }
}

/// Decodes and keys one remote-write body within `opts`' limits. Runs on the decode
/// pool; everything the decoder allocated is released when it returns.
remote_outcome decode_remote_write(std::string_view body, backend& be,
                                   const gateway_limits& lim,
                                   prom::metadata_memory& metadata) {
  auto& opts = be.options();
  prom::decode_options dopts;
  dopts.max_uncompressed_bytes = lim.max_remote_write_bytes;
  dopts.max_series = opts.limits.max_samples_per_batch;
  dopts.max_samples = opts.limits.max_samples_per_batch;
  dopts.max_labels_per_series = keys::max_labels_sent(opts.limits.max_labels_per_sample)
                                + 1;
  remote_outcome out;
  size_t size = 0;
  {
    prom::write_decoder decoder{dopts};
    auto decoded = decoder.decode(body);
    if (!decoded.ok()) {
      auto [code, name] = remote_refusal(decoded.error.code);
      out.code = code;
      out.error = name;
      out.message = decoded.error.message;
      return out;
    }
    auto seq = be.next_remote_sequence();
    wire::batch_keyer keyer{opts.limits, opts.slice_count};
    size_t stale = 0;
    auto rules = be.rules();
    // Metadata comes in requests of its own: earlier requests type this one's series.
    const prom::write_request_view* request = decoded.request;
    prom::write_request_view completed;
    std::deque<std::string> names;
    if (metadata.complete(*request, completed, names))
      request = &completed;
    auto err = keyer.key(seq, *request, wire::now_ms(), *rules, out.batch, stale);
    if (!err || err.code == errc::empty_batch) // a refused request changes nothing
      metadata.remember(*decoded.request);
    if (err.code == errc::empty_batch) {
      out.empty = true;
    } else if (err) {
      be.count_batch(err.code);
      out.code = http::status::bad_request;
      out.error = to_string_view(err.code);
      out.message = err.message;
    }
    snappy::GetUncompressedLength(body.data(), body.size(), &size);
  }
  if (size > trim_after_bytes)
    malloc_trim(0);
  return out;
}

/// The role an HTTP request for `path` needs (docs/security.md): none for health
/// and readiness, admin for /v1/admin/*, write for remote write, read otherwise
/// (unknown paths included, so that they reveal nothing without a token). The
/// dashboard's static files hold no cluster data; its event stream needs read.
role needed_role(std::string_view path) {
  if (path == "/healthz" || path == "/readyz" || dashboard::is_ui_path(path))
    return role::none;
  if (path == "/api/v1/write")
    return role::write;
  if (path.substr(0, 10) == "/v1/admin/")
    return role::admin;
  return role::read;
}

/// Whether an HTTP request may proceed: its `Authorization` header, or for the
/// dashboard's event stream (browsers cannot set headers on an EventSource) an
/// `access_token` query parameter, checked against the role `path` needs.
auth_verdict authorize(const token_table& table, std::string_view header,
                       std::string_view target, std::string_view path) {
  auto needed = needed_role(path);
  if (header.empty() && path == dashboard::stream_path) {
    if (auto token = query_value(target, "access_token"))
      return check_token(table, *token, needed);
  }
  return check_bearer(table, header, needed);
}

// -- HTTP session ------------------------------------------------------------------

/// One HTTP connection: answers operator requests one at a time, hands `/v1/stream`
/// upgrades to a WebSocket session and the dashboard's stream to the hub. A class
/// template over the connection's stream: `plain_stream`, or `tls_stream` on a TLS
/// port, where the session first makes the TLS handshake (and answers plain HTTP
/// with 400 `TLS_REQUIRED`).
template <class Stream>
class http_session : public std::enable_shared_from_this<http_session<Stream>> {
public:
  /// A plain connection.
  http_session(tcp::socket&& socket, backend& be, shared_state& shared,
               std::shared_ptr<connection_slot> slot)
    : stream_(std::move(socket)), backend_(be), shared_(shared), slot_(std::move(slot)) {
  }

  /// A connection on a TLS port, to be served with `tls`.
  http_session(tcp::socket&& socket, ssl::context& tls, backend& be,
               shared_state& shared, std::shared_ptr<connection_slot> slot)
    : stream_(std::move(socket), tls), backend_(be), shared_(shared),
      slot_(std::move(slot)) {
  }

  void run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&http_session::start, this->shared_from_this()));
  }

private:
  using request = http::request<http::string_body>;
  using std::enable_shared_from_this<http_session<Stream>>::shared_from_this;

  /// The TCP stream beneath (the stream itself on a plain port).
  beast::tcp_stream& lowest() {
    return beast::get_lowest_layer(stream_);
  }

  void start() {
    if constexpr (is_tls<Stream>) {
      // TLS 1.3 sends session tickets after the handshake: without TCP_NODELAY the
      // first answer would wait for the client's (delayed) acknowledgement of them.
      beast::error_code ignored;
      lowest().socket().set_option(tcp::no_delay(true), ignored);
      // Covers the first bytes and the handshake; do_read sets the next deadline.
      lowest().expires_after(
        std::chrono::milliseconds(shared_.limits.tls_handshake_timeout_ms));
      beast::async_detect_ssl(lowest(), buffer_,
                              beast::bind_front_handler(&http_session::on_detect,
                                                        shared_from_this()));
    } else {
      do_read();
    }
  }

  /// TLS port: a handshake, or plain HTTP that gets a plain answer.
  void on_detect(beast::error_code ec, bool tls) {
    if (ec)
      return; // gone or silent: a client mistake, not logged
    if (!tls) {
      net::async_write(lowest(), net::buffer(plain_on_tls_answer()),
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         if (!ec)
                           self->linger_tcp();
                       });
      return;
    }
    if constexpr (is_tls<Stream>)
      stream_.async_handshake(ssl::stream_base::server, buffer_.data(),
                              beast::bind_front_handler(&http_session::on_handshake,
                                                        shared_from_this()));
  }

  void on_handshake(beast::error_code ec, std::size_t used) {
    if (ec)
      return; // wrong version, unknown CA, no client certificate: the client's
              // TLS stack reports it; not logged per connection
    buffer_.consume(used);
    do_read();
  }

  /// The stream, handed over to a WebSocket session or a dashboard stream. A plain
  /// connection gets a fresh TCP stream around its socket, as before TLS existed.
  auto hand_over() {
    if constexpr (is_tls<Stream>)
      return std::move(stream_);
    else
      return plain_stream{stream_.release_socket()};
  }

  void do_read() {
    body_.reset();
    parser_.emplace();
    parser_->header_limit(shared_.limits.max_http_header_bytes);
    parser_->body_limit(shared_.limits.max_http_body_bytes);
    lowest().expires_after(std::chrono::milliseconds(shared_.limits.http_read_timeout_ms));
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&http_session::on_header,
                                                      shared_from_this()));
  }

  /// Reserves the body's announced size from the node's budget before reading it.
  void on_header(beast::error_code ec, std::size_t) {
    if (ec)
      return on_read_error(ec);
    // Credentials first: a client without them gets no body read and no answer
    // beyond 401/403. WebSocket upgrades present their token in `hello`.
    auto& head = parser_->get();
    auto target = std::string_view{head.target().data(), head.target().size()};
    auto path = target.substr(0, target.find('?'));
    if (!websocket::is_upgrade(head)) {
      auto needed = needed_role(path);
      auto table = shared_.credentials->current();
      auto header = head[http::field::authorization];
      switch (authorize(*table, std::string_view{header.data(), header.size()},
                        target, path)) {
        case auth_verdict::unauthenticated:
          challenge_ = true;
          return refuse(http::status::unauthorized, "UNAUTHENTICATED",
                        "this endpoint needs a token: Authorization: Bearer TOKEN");
        case auth_verdict::forbidden:
          return refuse(http::status::forbidden, "PERMISSION_DENIED",
                        "this endpoint needs a token with the "
                          + std::string{to_string_view(needed)} + " role");
        case auth_verdict::allowed:
          break;
      }
    }
    uint64_t need = 0;
    if (parser_->chunked())
      need = shared_.limits.max_http_body_bytes;
    else if (auto len = parser_->content_length())
      need = *len;
    if (need > shared_.limits.max_http_body_bytes)
      return refuse(http::status::payload_too_large, "BODY_TOO_LARGE",
                    "request body of " + std::to_string(need)
                      + " bytes exceeds the limit of "
                      + std::to_string(shared_.limits.max_http_body_bytes));
    if (need > 0) {
      body_ = body_reservation::take(shared_.body_bytes,
                                     shared_.limits.max_http_bodies_bytes, need);
      if (!body_)
        return refuse(http::status::service_unavailable, "UNAVAILABLE",
                      "the node is receiving as many request bodies as it takes; "
                      "retry later",
                      "1");
    }
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&http_session::on_read,
                                               shared_from_this()));
  }

  /// A request that could not be read: answered where the client can act on it.
  void on_read_error(beast::error_code ec) {
    if (ec == http::error::end_of_stream) {
      if constexpr (is_tls<Stream>)
        return close_tls();
      beast::error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    if (ec == http::error::body_limit)
      return refuse(http::status::payload_too_large, "BODY_TOO_LARGE",
                    "request body exceeds the limit of "
                      + std::to_string(shared_.limits.max_http_body_bytes) + " bytes");
    if (ec == http::error::header_limit)
      return refuse(http::status::request_header_fields_too_large, "HEADER_TOO_LARGE",
                    "request header exceeds "
                      + std::to_string(shared_.limits.max_http_header_bytes) + " bytes");
    if (ec == http::error::partial_message || ec.category() != http::make_error_code(http::error::bad_target).category())
      return; // the peer went away or timed out
    refuse(http::status::bad_request, "MALFORMED_REQUEST",
           "malformed HTTP request: " + ec.message());
  }

  /// Answers with an error and closes the connection.
  void refuse(http::status code, std::string_view error, const std::string& message,
              std::string_view retry_after = {}) {
    request req;
    req.version(11);
    req.keep_alive(false);
    reply_json_error(req, code, error, message, {}, retry_after);
  }

  /// Paths served for POST, and those served for GET and HEAD.
  static bool post_path(std::string_view path) {
    return path == "/api/v1/write" || path == "/v1/admin/reload-rules"
           || path == "/v1/admin/drain" || path == "/v1/admin/move"
           || path == "/v1/admin/rebalance";
  }

  static bool get_path(std::string_view path) {
    return path == "/metrics" || path == "/healthz" || path == "/readyz"
           || path == "/v1/directory" || path == "/v1/nodes" || path == "/v1/where"
           || path == "/v1/series" || path == "/v1/stream"
           || path == dashboard::stream_path || dashboard::is_ui_path(path);
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec)
      return on_read_error(ec);
    // The request is in: the time the node takes to answer it (an admin call that
    // moves slices, a write waiting for its quorum) is bounded by the node's own
    // deadlines, not by the client's read timeout; `reply` arms the next deadline.
    lowest().expires_never();
    auto req = parser_->release();
    auto target = std::string_view{req.target().data(), req.target().size()};
    auto path = target.substr(0, target.find('?'));
    if (websocket::is_upgrade(req)) {
      if (path != "/v1/stream")
        return reply_json_error(req, http::status::not_found, "NOT_FOUND",
                                "no WebSocket endpoint at this path; use /v1/stream");
      auto ws = make_ws_session(hand_over(), backend_, shared_.limits,
                                shared_.credentials, slot_,
                                [&pool = shared_.decoders](std::function<void()> task) {
                                  net::post(pool, std::move(task));
                                });
      shared_.sessions.add(ws);
      ws->run(std::move(req));
      return;
    }
    bool get = req.method() == http::verb::get || req.method() == http::verb::head;
    bool post = req.method() == http::verb::post;
    if (post_path(path) && !post)
      return reply_json_error(req, http::status::method_not_allowed, "METHOD_NOT_ALLOWED",
                              std::string{path} + " takes POST only", "POST");
    if (get_path(path) && !get)
      return reply_json_error(req, http::status::method_not_allowed, "METHOD_NOT_ALLOWED",
                              std::string{path} + " takes GET and HEAD only",
                              "GET, HEAD");
    if (post) {
      if (path == "/api/v1/write")
        return remote_write(std::move(req));
      if (path == "/v1/admin/reload-rules") {
        auto err = backend_.reload_rules();
        if (!err.empty())
          return reply_json_error(req, http::status::bad_request, "INVALID_RULES", err);
        return reply(req, http::status::ok, "application/json", "{\"reloaded\":true}\n");
      }
      return admin(std::move(req), path, target);
    }
    route(std::move(req), path, target);
  }

  /// Like post_back, for callbacks of three arguments.
  template <class F>
  auto post_back3(F f) {
    auto exec = stream_.get_executor();
    auto fn = std::make_shared<F>(std::move(f));
    return [exec, fn](auto a, auto b, auto c) {
      net::post(exec, [fn, a = std::move(a), b = std::move(b), c = std::move(c)]() mutable {
        (*fn)(std::move(a), std::move(b), std::move(c));
      });
    };
  }

  /// Wraps a backend callback so that it runs on this connection's executor.
  template <class F>
  auto post_back(F f) {
    auto exec = stream_.get_executor();
    auto fn = std::make_shared<F>(std::move(f));
    return [exec, fn](auto a, auto b) {
      net::post(exec, [fn, a = std::move(a), b = std::move(b)]() mutable {
        (*fn)(std::move(a), std::move(b));
      });
    };
  }
  /// POST /v1/admin/drain?node=N, /v1/admin/move?slice=S&node=N,
  /// /v1/admin/rebalance: passed on to the directory leader; answers once the
  /// moves are done.
  void admin(http::request<http::string_body>&& req, std::string_view path,
             std::string_view target) {
    admin_request ar;
    if (path == "/v1/admin/drain" || path == "/v1/admin/move") {
      ar.node = query_value(target, "node").value_or("");
      if (ar.node.empty())
        return reply_error(req, http::status::bad_request,
                           {errc::invalid_key, "missing query parameter 'node'"});
    }
    if (path == "/v1/admin/drain") {
      ar.what = admin_request::op::drain;
    } else if (path == "/v1/admin/move") {
      ar.what = admin_request::op::move;
      auto text = query_value(target, "slice").value_or("");
      if (text.empty()
          || text.find_first_not_of("0123456789") != std::string::npos
          || text.size() > 9)
        return reply_error(req, http::status::bad_request,
                           {errc::invalid_key,
                            "query parameter 'slice' must be a slice number"});
      ar.slice = static_cast<uint32_t>(std::stoul(text));
    }
    auto what = ar.what;
    auto self = shared_from_this();
    backend_.admin(std::move(ar), post_back([self, req = std::move(req), what](
                                               status st, uint64_t n) mutable {
      if (!st)
        return self->reply_failure(req, st);
      json::object o;
      if (what == admin_request::op::move)
        o["epoch"] = n;
      else
        o["moved"] = n;
      self->reply(req, http::status::ok, "application/json",
                  json::serialize(o) + "\n");
    }));
  }


  void route(http::request<http::string_body> req, std::string_view path,
             std::string_view target) {
    if (dashboard::is_ui_path(path) || path == dashboard::stream_path)
      return serve_dashboard(std::move(req), path);
    if (path == "/metrics")
      return metrics(std::move(req));
    if (path == "/healthz")
      return reply(req, http::status::ok, "text/plain", "ok\n");
    if (path == "/readyz") {
      if (backend_.ready())
        return reply(req, http::status::ok, "text/plain", "ready\n");
      return reply(req, http::status::service_unavailable, "text/plain",
                   "not ready: no routing table for every slice yet\n");
    }
    if (path == "/v1/directory" || path == "/v1/nodes") {
      bool nodes = path == "/v1/nodes";
      auto self = shared_from_this();
      backend_.table(post_back([self, req = std::move(req), nodes](
                                 status st, assignment_table t) mutable {
        if (!st)
          return self->reply_error(req, http::status::service_unavailable, st);
        if (nodes) {
          self->backend_.peers(self->post_back(
            [self, req = std::move(req), t = std::move(t)](
              status st, std::vector<peer_state> peers) mutable {
              if (!st)
                return self->reply_error(req, http::status::service_unavailable, st);
              auto body = nodes_json(t, peers);
              self->reply(req, http::status::ok, "application/json",
                          json::serialize(body) + "\n");
            }));
          return;
        }
        self->backend_.moves(self->post_back(
          [self, req = std::move(req), t = std::move(t)](status st,
                                                         moves_state m) mutable {
            auto body = directory_json(t);
            auto& o = body.as_object();
            o["clustered"] = self->backend_.clustered();
            if (st) {
              json::array moving;
              for (auto& x : m.moving)
                moving.emplace_back(
                  json::object{{"slice", x.slice}, {"from", x.from}, {"to", x.to}});
              o["pending_moves"] = std::move(moving);
              o["directory_leader"] = m.leader;
              o["moves_done"] = m.done;
              o["moves_failed"] = m.failed;
              o["last_move_error"] = m.last_error;
              o["reported_load"] = json::object{{"slices", m.loaded_slices},
                                                {"series", m.loaded_series}};
            } else {
              o["pending_moves"] = nullptr; // the leader did not answer
              o["directory_leader"] = nullptr;
              o["moves_error"] = st.message;
            }
            o["load"] = load_json(t);
            self->reply(req, http::status::ok, "application/json",
                        json::serialize(body) + "\n");
          }));
      }));
      return;
    }
    if (path == "/v1/where" || path == "/v1/series") {
      auto found = query_value(target, "key");
      if (!found)
        return reply_error(req, http::status::bad_request,
                           {errc::invalid_key, "missing query parameter 'key' (or a "
                                               "target that is not a valid URL: "
                                               "percent-encode the key)"});
      auto key = std::move(*found);
      if (path == "/v1/where")
        return where(std::move(req), key);
      auto local = query_value(target, "local").value_or("");
      if (local == "true" || local == "1")
        return read_local(std::move(req), key);
      auto self = shared_from_this();
      backend_.read(key, post_back([self, req = std::move(req)](
                                     status st, series_view v) mutable {
        if (!st)
          return self->reply_failure(req, st);
        json::object o{{"key", v.key},     {"slice", v.slice},
                       {"node", v.node},   {"epoch", v.epoch},
                       {"found", v.found}, {"state", state_json(v)}};
        self->reply(req, http::status::ok, "application/json",
                    json::serialize(o) + "\n");
      }));
      return;
    }
    reply_json_error(req, http::status::not_found, "NOT_FOUND",
                     "no endpoint at " + std::string{path}
                       + "; see docs/operations.md for the endpoints");
  }

  /// The dashboard's files (GET /ui/...) and its event stream, which takes the
  /// connection over.
  void serve_dashboard(request req, std::string_view path) {
    if (path == dashboard::stream_path) {
      if (!shared_.dashboard || shared_.dashboard->full())
        return reply_json_error(req, http::status::service_unavailable, "UNAVAILABLE",
                                "the node serves as many dashboard streams as it "
                                "takes; retry later",
                                {}, "5");
      return shared_.dashboard->attach(hand_over(), slot_);
    }
    auto* a = dashboard::find_asset(path);
    if (a == nullptr)
      return reply_json_error(req, http::status::not_found, "NOT_FOUND",
                              "no dashboard file at " + std::string{path});
    reply(req, http::status::ok, std::string{a->content_type}.c_str(),
          std::string{a->body});
  }

  /// GET /v1/series?key=K&local=true: this node's own replica of the series (no
  /// routing, no quorum), for comparing replicas; `replica` says whether the node
  /// holds the slice as primary, as follower, or not at all.
  void read_local(http::request<http::string_body> req, const std::string& key) {
    auto self = shared_from_this();
    backend_.read_local(key, post_back([self, req = std::move(req)](
                                         status st, backend::local_read r) mutable {
      if (!st)
        return self->reply_failure(req, st);
      auto& v = r.view;
      json::object o{{"key", v.key},         {"slice", v.slice},
                     {"node", v.node},       {"epoch", v.epoch},
                     {"found", v.found},     {"state", state_json(v)},
                     {"replica", r.replica},
                     {"position", json::object{{"epoch", r.epoch}, {"seq", r.seq}}}};
      self->reply(req, http::status::ok, "application/json",
                  json::serialize(o) + "\n");
    }));
  }

  /// Prometheus remote write: an ingest path equal to WebSocket writes. 204 once
  /// every slice applied the request; 4xx for what a retry cannot fix (nothing
  /// applied, except KIND_CONFLICT and INPUT_LIMIT as on the stream); 503 only for
  /// what a retry can fix. Decoding runs on the decode pool, off the I/O threads.
  void remote_write(request req) {
    auto header = [&](http::field f) {
      auto v = req[f];
      return std::string_view{v.data(), v.size()};
    };
    if (auto err = prom::check_media_type(header(http::field::content_type),
                                          header(http::field::content_encoding)))
      return reply_json_error(req, http::status::unsupported_media_type,
                              "UNSUPPORTED_MEDIA_TYPE", err.message);
    auto self = shared_from_this();
    net::post(shared_.decoders, [self, req = std::move(req)]() mutable {
      auto outcome = std::make_shared<remote_outcome>(
        decode_remote_write(req.body(), self->backend_, self->shared_.limits,
                            self->shared_.metadata));
      req.body().clear();
      req.body().shrink_to_fit();
      net::post(self->stream_.get_executor(), [self, req = std::move(req), outcome] {
        self->finish_remote_write(req, std::move(*outcome));
      });
    });
  }

  void finish_remote_write(const request& req, remote_outcome&& outcome) {
    if (outcome.empty)
      return reply(req, http::status::no_content, "text/plain", "");
    if (outcome.code != http::status::ok)
      return reply_json_error(req, outcome.code, outcome.error, outcome.message);
    auto self = shared_from_this();
    auto samples = outcome.batch.samples.size();
    backend_.remote_write(std::move(outcome.batch),
                          post_back([self, req, samples](status st, write_ack ack) mutable {
                            self->backend_.count_batch(st.code);
                            if (!st)
                              return self->reply_error(req,
                                                       write_failure_status(st.code),
                                                       st);
                            if (ack.late > 0)
                              return self->reply_late(req, ack, samples);
                            self->reply(req, http::status::no_content, "text/plain", "");
                          }));
  }

  /// Samples that came after their window closed were dropped: `400`, so that the
  /// sender counts and logs a failure (Prometheus: samples_failed_total and a
  /// "non-recoverable error" line) instead of believing them stored. The others
  /// were applied, and a 4xx is not retried: nothing is applied twice.
  void reply_late(const request& req, const write_ack& ack, size_t samples) {
    auto lateness = backend_.options().lateness_ms;
    reply_json_error(req, http::status::bad_request, "SAMPLES_LATE",
                     std::to_string(ack.late) + " of " + std::to_string(samples)
                       + " samples came after their window had closed (tether.lateness-ms "
                       + std::to_string(lateness) + ") and were dropped; "
                       + std::to_string(ack.accepted)
                       + " were applied. Send sooner: a remote_write queue_config "
                         "batch_send_deadline well below the lateness (docs/aggregation.md)");
  }

  /// The latest closed window of every local series, and the node's own metrics.
  void metrics(http::request<http::string_body> req) {
    auto self = shared_from_this();
    backend_.scrape(post_back3([self, req = std::move(req)](
                                 status st, std::vector<series_view> views,
                                 std::vector<std::pair<uint32_t, uint64_t>> slices) mutable {
      if (!st)
        return self->reply_error(req, http::status::service_unavailable, st);
      auto stats = self->backend_.stats();
      outputs::node_metrics me;
      me.node = self->backend_.options().name;
      me.series = stats.series;
      me.samples_applied = stats.samples_applied;
      me.samples_late = stats.samples_late;
      me.windows_closed = stats.windows_closed;
      me.primary_slices = stats.primary_slices;
      me.slice_series = std::move(slices);
      me.batches_acked = stats.batches_acked;
      me.near_answers = stats.near_answers;
      me.exporting = stats.exporting;
      me.export_queue_depth = stats.export_queue;
      me.export_sent = stats.export_sent;
      me.export_dropped = stats.export_dropped;
      for (auto& [code, n] : stats.batches_rejected)
        me.batches_rejected.emplace_back(std::string{to_string_view(code)}, n);
      std::string body;
      std::string error;
      auto rules = self->backend_.rules();
      if (!outputs::render_metrics(views, me, rules.get(), body, error))
        return self->reply_json_error(req, http::status::internal_server_error,
                                      "INTERNAL", error);
      self->reply(req, http::status::ok, prom::exposition_content_type.data(),
                  std::move(body));
    }));
  }

  void where(http::request<http::string_body> req, const std::string& text) {
    auto& opts = backend_.options();
    std::string key;
    std::string error;
    auto code = keys::canonicalise(text, opts.limits.max_labels_per_sample,
                                   opts.limits.max_key_bytes, key, error);
    if (code != errc::none)
      return reply_error(req, http::status::bad_request,
                         {errc::invalid_key, "invalid series key: " + error});
    auto slice = keys::slice_of(keys::key_hash(key), opts.slice_count);
    auto self = shared_from_this();
    backend_.table(post_back([self, req = std::move(req), key, slice](
                               status st, assignment_table t) mutable {
      if (!st)
        return self->reply_error(req, http::status::service_unavailable, st);
      if (slice >= t.slices.size())
        return self->reply_error(req, http::status::internal_server_error,
                                 {errc::internal, "directory has too few slices"});
      auto& a = t.slices[slice];
      json::object o{{"key", key},
                     {"slice", slice},
                     {"epoch", a.epoch},
                     {"primary", t.primary_name(slice)},
                     {"followers", followers_json(t, a)}};
      self->reply(req, http::status::ok, "application/json",
                  json::serialize(o) + "\n");
    }));
  }

  void reply_error(const http::request<http::string_body>& req, http::status code,
                   const status& st) {
    reply_json_error(req, code, to_string_view(st.code), st.message);
  }

  /// A failed request: 400 for a key that is not valid, else 503 (retryable).
  void reply_failure(const http::request<http::string_body>& req, const status& st) {
    reply_error(req,
                st.code == errc::invalid_key ? http::status::bad_request
                                             : http::status::service_unavailable,
                st);
  }

  void reply_json_error(const request& req, http::status code, std::string_view error,
                        const std::string& message, std::string_view allow = {},
                        std::string_view retry_after = {}) {
    json::object o{{"error", error}, {"message", keys::sanitised(message)}};
    reply(req, code, "application/json", json::serialize(o) + "\n", allow, retry_after);
  }

  void reply(const request& req, http::status code, const char* type, std::string body,
             std::string_view allow = {}, std::string_view retry_after = {}) {
    auto res = std::make_shared<http::response<http::string_body>>(code, req.version());
    res->set(http::field::server, "tetherd");
    res->set(http::field::content_type, type);
    if (!allow.empty())
      res->set(http::field::allow, allow);
    if (!retry_after.empty())
      res->set(http::field::retry_after, retry_after);
    if (challenge_)
      res->set(http::field::www_authenticate, "Bearer realm=\"tether\"");
    challenge_ = false;
    res->keep_alive(req.keep_alive());
    bool head = req.method() == http::verb::head;
    res->body() = head ? std::string{} : std::move(body);
    res->prepare_payload();
    // The client has http-read-timeout-ms to take the answer.
    lowest().expires_after(std::chrono::milliseconds(shared_.limits.http_read_timeout_ms));
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec,
                                                       std::size_t) {
                        if (ec)
                          return;
                        if (!res->keep_alive())
                          return self->linger();
                        self->do_read();
                      });
  }

  /// After a last answer: stops sending, then reads and discards what the client
  /// still sends for a short while, so that closing does not reset the connection
  /// before the client has read the answer. TLS: the records are read and dropped
  /// the same way (a close_notify alert would make OpenSSL fail on the data that
  /// follows it, which would reset the connection just the same).
  void linger() {
    body_.reset();
    if constexpr (is_tls<Stream>) {
      buffer_.consume(buffer_.size());
      lowest().expires_after(linger_time());
      discard(false);
    } else {
      linger_tcp();
    }
  }

  /// The linger of a plain connection (also plain HTTP answered on a TLS port).
  void linger_tcp() {
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    buffer_.consume(buffer_.size());
    lowest().expires_after(linger_time());
    discard(true);
  }

  /// The client ended the connection between requests: TLS answers its
  /// close_notify with one (bounded), then closes.
  void close_tls() {
    if constexpr (is_tls<Stream>) {
      lowest().expires_after(linger_time());
      stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
        self->lowest().close();
      });
    }
  }

  /// How long a connection may keep sending after its last answer before it is
  /// closed (`tether.http-linger-ms`).
  std::chrono::milliseconds linger_time() const {
    return std::chrono::milliseconds(shared_.limits.http_linger_ms);
  }

  /// Reads and drops what the client sends until it stops, the linger time is up or
  /// `http_linger_bytes` were dropped; `raw` reads beneath TLS.
  void discard(bool raw) {
    auto self = shared_from_this();
    auto done = [self, raw](beast::error_code ec, std::size_t n) {
      self->lingered_ += n;
      if (ec || self->lingered_ > self->shared_.limits.http_linger_bytes)
        return;
      self->discard(raw);
    };
    if (raw)
      lowest().async_read_some(buffer_.prepare(64 << 10), std::move(done));
    else
      stream_.async_read_some(buffer_.prepare(64 << 10), std::move(done));
  }

  Stream stream_;
  backend& backend_;
  shared_state& shared_;
  std::shared_ptr<connection_slot> slot_;
  std::shared_ptr<body_reservation> body_; ///< of the request being served
  beast::flat_buffer buffer_;
  std::size_t lingered_ = 0;
  bool challenge_ = false; ///< the next reply asks for a Bearer token
  std::optional<http::request_parser<http::string_body>> parser_;
};

} // namespace

// -- server ----------------------------------------------------------------------

struct server::impl {
  impl(const node_options& o, const gateway_limits& l,
       std::shared_ptr<credential_store> c, std::shared_ptr<tls_store> t)
    : opts(o),
      tls(std::move(t)),
      ioc(static_cast<int>(std::max(1u, o.io_threads))),
      acceptor(net::make_strand(ioc)),
      shared(l, std::move(c)) {
  }

  /// SIGHUP reloads the rules file, the tokens file and the TLS files; a refused
  /// file keeps the old rules, tokens or TLS context.
  void wait_for_hangup() {
    hangup.async_wait([this](beast::error_code ec, int) {
      if (ec)
        return;
      if (tls) {
        auto err = tls->reload();
        if (err.empty())
          std::cout << "tetherd: TLS certificate reloaded (" << tls->describe() << ")"
                    << std::endl;
        else
          std::cerr << "tetherd: TLS certificate not reloaded: " << err << std::endl;
      }
      auto terr = shared.credentials->reload();
      if (terr.empty())
        std::cout << "tetherd: tokens reloaded ("
                  << shared.credentials->current()->size() << ")" << std::endl;
      else
        std::cerr << "tetherd: tokens not reloaded: " << terr << std::endl;
      auto err = be->reload_rules();
      if (err.empty())
        std::cout << "tetherd: rules reloaded" << std::endl;
      else
        std::cerr << "tetherd: rules not reloaded: " << err << std::endl;
      wait_for_hangup();
    });
  }

  void do_accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec,
                                                        tcp::socket socket) {
      if (ec == net::error::operation_aborted)
        return;
      if (ec)
        return back_off();
      backoff = std::chrono::milliseconds(0);
      serve(std::move(socket));
      do_accept();
    });
  }

  /// After an accept error (out of descriptors, most of all) waits before the next
  /// accept instead of spinning: `accept_backoff_min_ms` (5 ms), doubling up to
  /// `accept_backoff_max_ms` (200 ms), so that the node takes connections again within
  /// that maximum of descriptors coming back.
  void back_off() {
    auto& l = shared.limits;
    backoff = std::clamp(backoff * 2, std::chrono::milliseconds(l.accept_backoff_min_ms),
                         std::chrono::milliseconds(l.accept_backoff_max_ms));
    accept_timer.expires_after(backoff);
    accept_timer.async_wait([this](beast::error_code ec) {
      if (!ec)
        do_accept();
    });
  }

  /// Serves a new connection, or closes it at once when the node has as many open
  /// as it takes.
  void serve(tcp::socket socket) {
    auto slot = connection_slot::take(shared.connections, shared.limits.max_connections);
    if (!slot) {
      beast::error_code ignored;
      socket.close(ignored);
      return;
    }
    if (tls) {
      auto ctx = tls->current(); // the connection's SSL object holds its own reference
      std::make_shared<http_session<tls_stream>>(std::move(socket), *ctx, *be, shared,
                                                 std::move(slot))
        ->run();
      return;
    }
    std::make_shared<http_session<plain_stream>>(std::move(socket), *be, shared,
                                                 std::move(slot))
      ->run();
  }

  node_options opts;
  /// The TLS context store when the port speaks TLS; null on a plain port.
  std::shared_ptr<tls_store> tls;
  std::unique_ptr<backend> be;
  net::io_context ioc;
  tcp::acceptor acceptor;
  net::steady_timer accept_timer{ioc};
  std::chrono::milliseconds backoff{0};
  /// Empty until handle_signals: an application that embeds the gateway keeps its
  /// own signal handling.
  net::signal_set signals{ioc};
  net::signal_set hangup{ioc};
  shared_state shared; ///< after ioc: its decode pool stops first
  net::steady_timer grace{ioc};
  std::vector<std::thread> threads;
  std::atomic<bool> stopped{false};
  bool signals_handled = false;
};

server::server(const node_options& opts, const gateway_limits& limits,
               std::shared_ptr<credential_store> credentials,
               std::shared_ptr<tls_store> tls)
  : impl_(std::make_unique<impl>(opts, limits, std::move(credentials), std::move(tls))) {
}

server::~server() {
  stop();
  wait();
}

uint16_t server::bind() {
  auto& opts = impl_->opts;
  tcp::endpoint ep{net::ip::make_address(opts.host), opts.port};
  auto& a = impl_->acceptor;
  a.open(ep.protocol());
  a.set_option(net::socket_base::reuse_address(true));
  a.bind(ep);
  a.listen(net::socket_base::max_listen_connections);
  return a.local_endpoint().port();
}

void server::serve(std::unique_ptr<backend> b) {
  impl_->be = std::move(b);
  auto& l = impl_->shared.limits;
  impl_->shared.dashboard = std::make_shared<dashboard::hub>(
    impl_->ioc, *impl_->be, l.max_dashboard_streams,
    std::chrono::milliseconds(l.dashboard_write_timeout_ms));
  impl_->shared.dashboard->start();
  impl_->do_accept();
}

void server::handle_signals() {
  auto& i = *impl_;
  if (i.signals_handled)
    return;
  i.signals_handled = true;
  i.signals.add(SIGINT);
  i.signals.add(SIGTERM);
  i.hangup.add(SIGHUP);
  i.signals.async_wait([this](beast::error_code ec, int) {
    if (!ec)
      stop();
  });
  i.wait_for_hangup();
}

void server::start() {
  auto n = std::max(1u, impl_->opts.io_threads);
  for (uint32_t i = 0; i < n; ++i)
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
}

void server::wait() {
  for (auto& t : impl_->threads)
    t.join();
  impl_->threads.clear();
}

void server::run_until_signal() {
  handle_signals();
  start();
  wait();
}

void server::stop() {
  if (impl_->stopped.exchange(true))
    return;
  if (impl_->ioc.stopped())
    return;
  // Stop accepting, send every WebSocket client a close frame, and give the
  // sessions a short grace period to flush before the I/O threads end.
  net::post(impl_->ioc, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->signals.cancel(ignored);
    impl_->hangup.cancel(ignored);
    impl_->shared.sessions.shutdown_all();
    if (impl_->shared.dashboard)
      impl_->shared.dashboard->stop();
    impl_->accept_timer.cancel();
    impl_->grace.expires_after(
      std::chrono::milliseconds(impl_->shared.limits.shutdown_grace_ms));
    impl_->grace.async_wait([this](beast::error_code) { impl_->ioc.stop(); });
  });
}

} // namespace tether::gateway
