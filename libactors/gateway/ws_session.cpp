#include "gateway/ws_session.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <google/protobuf/arena.h>

#include "keys/series_key.hpp"
#include "rules/rule_set.hpp"
#include "series/slice_state.hpp"
#include "wire/codec.hpp"
#include "wire/keyed_batch.hpp"
#include "wire/tether.pb.h"
#include "wire/write_view.hpp"

namespace tether::gateway {

namespace websocket = beast::websocket;

namespace {

/// Read buffer a session keeps between frames; larger ones are released.
constexpr std::size_t retained_buffer_bytes = 64 * 1024;

/// Piece size while discarding an oversized message.
constexpr std::size_t discard_chunk = 64 * 1024;

/// How long a session gathers the shards' reports of a closed window.
constexpr auto window_gather = std::chrono::milliseconds(30);

/// Per I/O thread arena block for decoding frames; larger frames spill to the heap.
constexpr std::size_t arena_block_bytes = 1 << 20;

/// Frames larger than this are decoded off the I/O threads (`offload_fn`): a
/// frame of tens of thousands of labels takes tens of milliseconds to decode, and
/// every other connection of the I/O thread would wait for it.
constexpr std::size_t offload_frame_bytes = 64 << 10;

/// A frame decoded off the I/O thread, in an arena of its own; a binary write read
/// in place keeps its bytes, which the view points into.
struct decoded_frame {
  google::protobuf::Arena arena;
  v1::ClientFrame* frame = google::protobuf::Arena::CreateMessage<v1::ClientFrame>(&arena);
  std::string bytes;
  wire::write_view write;
  bool in_place = false;
  std::string error;
  bool ok = false;
};

uint64_t sequence_of(const v1::Write& w) {
  return w.sequence();
}

uint64_t sequence_of(const wire::write_view& w) {
  return w.sequence;
}

bool valid_producer_id(const std::string& id) {
  if (id.empty() || id.size() > 256)
    return false;
  for (unsigned char c : id)
    if (c < 0x21 || c > 0x7e)
      return false;
  return true;
}

} // namespace

namespace {

template <class T>
std::shared_ptr<T> lock(const std::weak_ptr<T>& p) {
  return p.lock();
}

template <class T>
std::shared_ptr<T> lock(const std::shared_ptr<T>& p) {
  return p;
}

} // namespace

ws_session::~ws_session() = default;

/// The session over one kind of stream (see ws_session in the header).
template <class Stream>
class basic_ws_session final : public ws_session,
                               public std::enable_shared_from_this<basic_ws_session<Stream>> {
public:
  basic_ws_session(Stream&& stream, backend& be, const gateway_limits& limits,
                   std::shared_ptr<const credential_store> credentials,
                   std::shared_ptr<void> slot, offload_fn offload);
  ~basic_ws_session() override;

  void run(http::request<http::string_body> req) override;
  void shutdown() override;

private:
  void on_accept(beast::error_code ec);
  void do_read();
  void on_read(beast::error_code ec, std::size_t bytes);
  void on_frame(std::string_view bytes, wire::encoding enc);
  /// Decodes a large frame through `offload_`, then handles it on the session's
  /// strand and reads on; no other frame is read meanwhile.
  void offload_frame(std::string bytes, wire::encoding enc);
  void handle_frame(const v1::ClientFrame& frame, wire::encoding enc);
  void on_hello(const v1::Hello& hello, wire::encoding enc);
  /// A write decoded by libprotobuf (v1::Write) or read in place (wire::write_view).
  template <class Write>
  void on_write(const Write& write, wire::encoding enc);
  void on_query(const v1::Query& query, wire::encoding enc);
  void on_subscribe(const v1::Subscribe& sub, wire::encoding enc);
  /// Why a subscribe request `id` for `keys` (canonical) would exceed the
  /// connection's limits, or empty.
  std::string subscription_limit(uint64_t id, const std::vector<std::string>& keys) const;
  void on_windows(std::vector<series_view> views);
  /// Sends the gathered window updates in `window_gather`, except those of
  /// subscribe requests whose first update is still due.
  void arm_window_timer();
  /// The first update of subscribe request `id`: the state in `views`. Drops the
  /// gathered windows of `id` it already covers (a window that closed before the
  /// read), so that no update after it shows an older state.
  void send_snapshot(uint64_t id, wire::encoding enc, const std::vector<series_view>& views);
  /// One answer of subscribe request `id` came (a state or an error).
  void snapshot_answered(uint64_t id);
  void send_error(wire::encoding enc, errc code, const std::string& message,
                  uint64_t sequence = 0, uint64_t request_id = 0,
                  int32_t index = -1);
  void send(const v1::ServerFrame& frame, wire::encoding enc);
  void do_write();
  void on_write_done(beast::error_code ec, std::size_t bytes);
  void maybe_resume_reading();
  void close_with(websocket::close_code code, const std::string& reason);
  void close_slow_client();
  void fail(beast::error_code ec, const char* what);

  /// Wraps `f` into a callback for the node that runs it on this session's strand.
  /// With a shared_ptr the pending reply keeps the session alive (a session paused
  /// for backpressure has no other owner); with a weak_ptr it does not.
  template <class Ptr, class F>
  static auto on_strand(Ptr ptr, F f);

  void arm_idle_timer(std::chrono::steady_clock::duration after);

  offload_fn offload_;
  websocket::stream<Stream> ws_;
  net::steady_timer idle_timer_;
  net::steady_timer window_timer_;
  bool window_timer_armed_ = false;
  /// Window updates gathered per (subscribe request, window start, window end).
  std::map<std::tuple<uint64_t, int64_t, int64_t>, v1::ServerFrame> pending_windows_;
  /// Subscribe requests whose first update has not gone out, with how many of their
  /// answers are due: their windows wait in `pending_windows_`.
  std::map<uint64_t, uint32_t> snapshots_due_;
  std::chrono::steady_clock::time_point last_activity_;
  backend& backend_;
  const tether::limits limits_;
  const gateway_limits gateway_limits_;
  std::shared_ptr<const credential_store> credentials_;
  credential credential_; ///< what the hello's token grants; none before hello
  std::shared_ptr<void> slot_;
  net::steady_timer cut_timer_;   ///< ends a connection that takes no close frame
  beast::flat_buffer buffer_;
  std::size_t frame_bytes_ = 0;   ///< bytes of the current message so far
  bool discarding_ = false;       ///< current message exceeded the limit
  bool reading_ = false;
  bool closed_ = false;
  uint32_t inflight_ = 0;         ///< writes sent to the node, not yet answered
  std::deque<std::pair<std::string, bool>> queue_; ///< (bytes, binary)
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  std::shared_ptr<session_backend> session_;
  std::string producer_;
  wire::batch_keyer keyer_;
  v1::ServerFrame out_;
  wire::keyed_batch batch_;
  /// Canonical key -> the subscribe requests that asked for it.
  std::map<std::string, std::vector<uint64_t>> subscriptions_;
  std::map<uint64_t, wire::encoding> request_encoding_; ///< of each subscribe
  bool close_pending_ = false;
  websocket::close_reason close_reason_;
};

template <class Stream>
template <class Ptr, class F>
auto basic_ws_session<Stream>::on_strand(Ptr ptr, F f) {
  return [ptr, f](auto... xs) {
    auto self = lock(ptr);
    if (!self)
      return;
    auto exec = self->ws_.get_executor();
    net::post(exec, [self, f, args = std::make_tuple(std::move(xs)...)]() mutable {
      if (self->closed_)
        return;
      std::apply([&](auto&... a) { f(*self, std::move(a)...); }, args);
    });
  };
}

template <class Stream>
basic_ws_session<Stream>::basic_ws_session(
  Stream&& stream, backend& be, const gateway_limits& limits,
  std::shared_ptr<const credential_store> credentials, std::shared_ptr<void> slot,
  offload_fn offload)
  : offload_(std::move(offload)),
    ws_(std::move(stream)),
    idle_timer_(ws_.get_executor()),
    window_timer_(ws_.get_executor()),
    backend_(be),
    limits_(be.options().limits),
    gateway_limits_(limits),
    credentials_(std::move(credentials)),
    slot_(std::move(slot)),
    cut_timer_(ws_.get_executor()),
    keyer_(be.options().limits, be.options().slice_count) {
}

template <class Stream>
basic_ws_session<Stream>::~basic_ws_session() {
  if (session_)
    session_->close();
}

template <class Stream>
void basic_ws_session<Stream>::run(http::request<http::string_body> req) {
  auto& sock = beast::get_lowest_layer(ws_).socket();
  beast::error_code ignored;
  sock.set_option(tcp::no_delay(true), ignored);
  beast::get_lowest_layer(ws_).expires_never();
  websocket::stream_base::timeout t;
  t.handshake_timeout = std::chrono::milliseconds(gateway_limits_.ws_handshake_timeout_ms);
  // Idle is tracked by the session: Beast's own idle timer ignores incoming pings
  // unless it sends pings itself, which would keep silent clients alive forever.
  t.idle_timeout = websocket::stream_base::none();
  t.keep_alive_pings = false;
  ws_.set_option(t);
  ws_.control_callback([this](websocket::frame_type, beast::string_view) {
    last_activity_ = std::chrono::steady_clock::now();
  });
  ws_.set_option(websocket::stream_base::decorator(
    [](websocket::response_type& res) { res.set(http::field::server, "tetherd"); }));
  ws_.read_message_max(0); // the session enforces max_frame_bytes itself
  ws_.async_accept(req, beast::bind_front_handler(&basic_ws_session::on_accept,
                                                  this->shared_from_this()));
}

template <class Stream>
void basic_ws_session<Stream>::shutdown() {
  net::post(ws_.get_executor(), [self = this->shared_from_this()] {
    self->close_with(websocket::close_code::going_away, "node shutting down");
  });
}

template <class Stream>
void basic_ws_session<Stream>::on_accept(beast::error_code ec) {
  if (ec)
    return fail(ec, "accept");
  last_activity_ = std::chrono::steady_clock::now();
  arm_idle_timer(std::chrono::milliseconds(limits_.idle_timeout_ms));
  do_read();
}

template <class Stream>
void basic_ws_session<Stream>::arm_idle_timer(std::chrono::steady_clock::duration after) {
  idle_timer_.expires_after(after);
  idle_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
    if (ec || self->closed_)
      return;
    auto idle = std::chrono::milliseconds(self->limits_.idle_timeout_ms);
    auto now = std::chrono::steady_clock::now();
    // A session waiting for acknowledgements is not idle: it is not reading.
    if (self->inflight_ > 0)
      self->last_activity_ = now;
    auto quiet = now - self->last_activity_;
    if (quiet >= idle)
      return self->close_with(websocket::close_code::going_away, "idle timeout");
    self->arm_idle_timer(idle - quiet);
  });
}

template <class Stream>
void basic_ws_session<Stream>::do_read() {
  if (reading_ || closed_ || inflight_ >= limits_.max_inflight_batches)
    return;
  reading_ = true;
  std::size_t limit = discarding_ ? discard_chunk
                                  : limits_.max_frame_bytes + 1 - frame_bytes_;
  ws_.async_read_some(buffer_, limit,
                      beast::bind_front_handler(&basic_ws_session::on_read,
                                                this->shared_from_this()));
}

template <class Stream>
void basic_ws_session<Stream>::on_read(beast::error_code ec, std::size_t bytes) {
  reading_ = false;
  if (ec)
    return fail(ec, "read");
  last_activity_ = std::chrono::steady_clock::now();
  frame_bytes_ += bytes;
  if (!discarding_ && frame_bytes_ > limits_.max_frame_bytes)
    discarding_ = true;
  if (discarding_)
    buffer_.consume(buffer_.size());
  if (ws_.is_message_done()) {
    auto enc = ws_.got_text() ? wire::encoding::json : wire::encoding::binary;
    if (discarding_) {
      send_error(enc, errc::frame_too_large,
                 "frame of " + std::to_string(frame_bytes_)
                   + " bytes exceeds the limit of "
                   + std::to_string(limits_.max_frame_bytes));
    } else if (auto data = buffer_.cdata(); data.size() > offload_frame_bytes) {
      offload_frame({static_cast<const char*>(data.data()), data.size()}, enc);
      reading_ = true; // until the frame is handled: frames are handled in order
    } else {
      on_frame({static_cast<const char*>(data.data()), data.size()}, enc);
    }
    buffer_.consume(buffer_.size());
    // A large frame must not leave every idle session holding a large buffer.
    if (buffer_.capacity() > retained_buffer_bytes)
      buffer_.shrink_to_fit();
    frame_bytes_ = 0;
    discarding_ = false;
  }
  do_read();
}

template <class Stream>
void basic_ws_session<Stream>::on_frame(std::string_view bytes, wire::encoding enc) {
  // Decode into an arena whose first block is this I/O thread's scratch buffer: a
  // frame of thousands of samples costs no heap allocation. Nothing decoded outlives
  // this call (the keyer copies what it keeps).
  // A binary write, nearly every frame under load, is read in place instead.
  thread_local wire::write_view in_place;
  if (enc == wire::encoding::binary && wire::read_write_frame(bytes, in_place))
    return on_write(in_place, enc);
  thread_local std::unique_ptr<char[]> scratch{new char[arena_block_bytes]};
  google::protobuf::ArenaOptions ao;
  ao.initial_block = scratch.get();
  ao.initial_block_size = arena_block_bytes;
  google::protobuf::Arena arena{ao};
  auto& frame = *google::protobuf::Arena::CreateMessage<v1::ClientFrame>(&arena);
  std::string error;
  if (!wire::decode(bytes, enc, frame, error))
    return send_error(enc, errc::malformed_frame, error);
  handle_frame(frame, enc);
}

template <class Stream>
void basic_ws_session<Stream>::offload_frame(std::string bytes, wire::encoding enc) {
  offload_([self = this->shared_from_this(), bytes = std::move(bytes), enc]() mutable {
    auto decoded = std::make_shared<decoded_frame>();
    decoded->in_place = enc == wire::encoding::binary
                        && wire::read_write_frame(bytes, decoded->write);
    if (decoded->in_place)
      decoded->bytes = std::move(bytes);
    else
      decoded->ok = wire::decode(bytes, enc, *decoded->frame, decoded->error);
    bytes = std::string{};
    net::post(self->ws_.get_executor(), [self, decoded, enc] {
      self->reading_ = false;
      if (self->closed_)
        return;
      if (decoded->in_place)
        self->on_write(decoded->write, enc);
      else if (decoded->ok)
        self->handle_frame(*decoded->frame, enc);
      else
        self->send_error(enc, errc::malformed_frame, decoded->error);
      self->do_read();
    });
  });
}

template <class Stream>
void basic_ws_session<Stream>::handle_frame(const v1::ClientFrame& frame,
                                            wire::encoding enc) {
  switch (frame.frame_case()) {
    case v1::ClientFrame::kPing: {
      out_.Clear();
      out_.mutable_pong()->set_nonce(frame.ping().nonce());
      return send(out_, enc);
    }
    case v1::ClientFrame::kHello:
      return on_hello(frame.hello(), enc);
    case v1::ClientFrame::kWrite:
      return on_write(frame.write(), enc);
    case v1::ClientFrame::kQuery:
      return on_query(frame.query(), enc);
    case v1::ClientFrame::kSubscribe:
      return on_subscribe(frame.subscribe(), enc);
    default:
      return send_error(enc, errc::malformed_frame,
                        "frame carries no known request");
  }
}

template <class Stream>
void basic_ws_session<Stream>::on_hello(const v1::Hello& hello, wire::encoding enc) {
  auto& opts = backend_.options();
  // Without configured tokens every session may do everything (docs/security.md).
  credential granted;
  granted.granted = role::admin;
  granted.any_producer = true;
  if (auto table = credentials_->current(); table->enabled()) {
    auto found = table->find(hello.token());
    if (!found) {
      send_error(enc, errc::unauthenticated, "wrong or missing token");
      return close_with(websocket::close_code::policy_error, "unauthenticated");
    }
    granted = std::move(*found);
  }
  if (session_)
    return send_error(enc, errc::bad_hello, "this session already said hello as '"
                                              + producer_ + "'");
  if (hello.protocol_version() > 1)
    return send_error(enc, errc::bad_hello,
                      "unsupported protocol_version "
                        + std::to_string(hello.protocol_version())
                        + ", this node speaks 1");
  if (!valid_producer_id(hello.producer_id()))
    return send_error(enc, errc::bad_hello,
                      "producer_id must be 1 to 256 printable ASCII characters");
  if (series::is_node_producer(hello.producer_id()))
    return send_error(enc, errc::permission_denied,
                      "producer ids starting with 'remote-write@' belong to the nodes");
  if (granted.granted >= role::write && !granted.may_write_as(hello.producer_id()))
    return send_error(enc, errc::permission_denied,
                      "this token may only use producer ids starting with '"
                        + granted.producer_prefix + "'");
  credential_ = std::move(granted);
  producer_ = hello.producer_id();
  auto sink = on_strand(this->weak_from_this(), [](basic_ws_session& s,
                                             std::vector<series_view> views) {
    s.on_windows(std::move(views));
  });
  session_ = backend_.open_session(producer_, std::move(sink));
  out_.Clear();
  auto* w = out_.mutable_welcome();
  w->set_node(opts.name);
  w->set_protocol_version(1);
  w->set_max_frame_bytes(limits_.max_frame_bytes);
  w->set_max_samples_per_batch(limits_.max_samples_per_batch);
  w->set_max_labels_per_sample(limits_.max_labels_per_sample);
  w->set_max_key_bytes(limits_.max_key_bytes);
  w->set_max_inflight_batches(limits_.max_inflight_batches);
  send(out_, enc);
}

template <class Stream>
void basic_ws_session<Stream>::on_windows(std::vector<series_view> views) {
  // One update per subscribe request and closed window. The shards of a node close
  // a window at the same tick but report separately: gather briefly, then send.
  for (auto& v : views) {
    auto i = subscriptions_.find(v.key);
    if (i == subscriptions_.end())
      continue;
    for (auto id : i->second) {
      auto& f = pending_windows_[{id, v.window.start_ms, v.window.end_ms}];
      auto* u = f.mutable_window_update();
      u->set_request_id(id);
      u->set_window_start_ms(v.window.start_ms);
      u->set_window_end_ms(v.window.end_ms);
      wire::to_wire(v, *u->add_series());
    }
  }
  arm_window_timer();
}

template <class Stream>
void basic_ws_session<Stream>::arm_window_timer() {
  if (pending_windows_.empty() || window_timer_armed_)
    return;
  window_timer_armed_ = true;
  window_timer_.expires_after(window_gather);
  window_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
    self->window_timer_armed_ = false;
    if (ec || self->closed_)
      return;
    auto pending = std::move(self->pending_windows_);
    self->pending_windows_.clear();
    for (auto& [k, f] : pending) {
      auto id = std::get<0>(k);
      if (self->snapshots_due_.count(id) != 0)
        self->pending_windows_.emplace(k, std::move(f)); // after its first update
      else
        self->send(f, self->request_encoding_[id]);
    }
  });
}

template <class Stream>
void basic_ws_session<Stream>::snapshot_answered(uint64_t id) {
  auto i = snapshots_due_.find(id);
  if (i != snapshots_due_.end() && --i->second == 0)
    snapshots_due_.erase(i);
}

template <class Stream>
void basic_ws_session<Stream>::send_snapshot(uint64_t id, wire::encoding enc,
                                             const std::vector<series_view>& views) {
  // The end of the latest closed window in the state of each key: a gathered
  // window of the request that ended no later closed before the read, so the
  // state already holds it (and more).
  std::unordered_map<std::string_view, int64_t> covered;
  for (auto& v : views)
    if (v.window.end_ms > 0)
      covered[v.key] = v.window.end_ms;
  for (auto i = pending_windows_.begin(); i != pending_windows_.end();) {
    auto request = std::get<0>(i->first);
    auto end = std::get<2>(i->first);
    if (request != id || covered.empty()) {
      ++i;
      continue;
    }
    auto* xs = i->second.mutable_window_update()->mutable_series();
    int kept = 0;
    for (int j = 0; j < xs->size(); ++j) {
      auto c = covered.find(xs->Get(j).key());
      if (c != covered.end() && end <= c->second)
        continue;
      if (kept != j)
        xs->SwapElements(kept, j);
      ++kept;
    }
    xs->DeleteSubrange(kept, xs->size() - kept);
    i = xs->empty() ? pending_windows_.erase(i) : std::next(i);
  }
  out_.Clear();
  auto* u = out_.mutable_window_update();
  u->set_request_id(id);
  u->set_window_start_ms(0);
  u->set_window_end_ms(wire::now_ms());
  for (auto& v : views)
    wire::to_wire(v, *u->add_series());
  send(out_, enc);
}

template <class Stream>
template <class Write>
void basic_ws_session<Stream>::on_write(const Write& write, wire::encoding enc) {
  if (!session_)
    return send_error(enc, errc::hello_required, "say hello before writing",
                      sequence_of(write));
  if (credential_.granted < role::write)
    return send_error(enc, errc::permission_denied,
                      "this session's token has the " 
                        + std::string{to_string_view(credential_.granted)}
                        + " role; writing needs write",
                      sequence_of(write));
  auto rules = backend_.rules();
  if (auto err = keyer_.key(write, wire::now_ms(), *rules, batch_))
  {
    backend_.count_batch(err.code);
    return send_error(enc, err.code, err.message, sequence_of(write), 0, err.index);
  }
  ++inflight_;
  auto seq = sequence_of(write);
  session_->write(std::move(batch_),
                  on_strand(this->shared_from_this(), [enc, seq](basic_ws_session& s, status st,
                                                         write_ack ack) {
                    --s.inflight_;
                    s.backend_.count_batch(st.code);
                    if (st) {
                      s.out_.Clear();
                      auto* a = s.out_.mutable_ack();
                      a->set_sequence(ack.sequence);
                      a->set_accepted(ack.accepted);
                      a->set_duplicate(ack.duplicate);
                      a->set_late(ack.late);
                      s.send(s.out_, enc);
                    } else {
                      s.send_error(enc, st.code, st.message, seq);
                    }
                    s.do_read();
                  }));
  batch_ = wire::keyed_batch{};
}

template <class Stream>
void basic_ws_session<Stream>::on_query(const v1::Query& query, wire::encoding enc) {
  auto id = query.request_id();
  if (!session_)
    return send_error(enc, errc::hello_required, "say hello before querying", 0, id);
  session_->read(query.key(), on_strand(this->shared_from_this(), [enc, id](basic_ws_session& s,
                                                                    status st,
                                                                    series_view v) {
                   if (!st)
                     return s.send_error(enc, st.code, st.message, 0, id);
                   s.out_.Clear();
                   auto* r = s.out_.mutable_query_result();
                   r->set_request_id(id);
                   r->set_found(v.found);
                   wire::to_wire(v, *r->mutable_series());
                   s.send(s.out_, enc);
                 }));
}

template <class Stream>
std::string
basic_ws_session<Stream>::subscription_limit(uint64_t id,
                                             const std::vector<std::string>& keys) const {
  auto& l = gateway_limits_;
  if (request_encoding_.count(id) == 0 && request_encoding_.size() >= l.max_subscriptions)
    return "this connection holds " + std::to_string(request_encoding_.size())
           + " subscriptions, the most tether.max-subscriptions allows";
  std::set<std::string_view> added;
  for (auto& k : keys)
    if (subscriptions_.count(k) == 0)
      added.insert(k);
  if (subscriptions_.size() + added.size() > l.max_subscribed_keys)
    return "this subscribe would follow " + std::to_string(subscriptions_.size() + added.size())
           + " keys on this connection, above tether.max-subscribed-keys = "
           + std::to_string(l.max_subscribed_keys);
  return {};
}

template <class Stream>
void basic_ws_session<Stream>::on_subscribe(const v1::Subscribe& sub, wire::encoding enc) {
  auto id = sub.request_id();
  if (!session_)
    return send_error(enc, errc::hello_required, "say hello before subscribing", 0,
                      id);
  std::vector<std::string> keys;
  keys.reserve(static_cast<size_t>(sub.keys_size()));
  for (auto& text : sub.keys()) {
    std::string key;
    std::string error;
    auto code = keys::canonicalise(text, limits_.max_labels_per_sample,
                                   limits_.max_key_bytes, key, error);
    if (code != errc::none)
      return send_error(enc, errc::invalid_key, "invalid series key: " + error, 0,
                        id);
    keys.push_back(std::move(key));
  }
  if (auto err = subscription_limit(id, keys); !err.empty())
    return send_error(enc, errc::subscription_limit, err, 0, id);
  for (auto& k : keys) {
    auto& ids = subscriptions_[k];
    if (std::find(ids.begin(), ids.end(), id) == ids.end())
      ids.push_back(id);
  }
  request_encoding_[id] = enc;
  ++snapshots_due_[id];
  session_->subscribe(std::move(keys),
                      on_strand(this->shared_from_this(),
                                [enc, id](basic_ws_session& s, status st,
                                          std::vector<series_view> views) {
                                  s.snapshot_answered(id);
                                  if (!st)
                                    s.send_error(enc, st.code, st.message, 0, id);
                                  else
                                    s.send_snapshot(id, enc, views);
                                  s.arm_window_timer();
                                }));
}

template <class Stream>
void basic_ws_session<Stream>::send_error(wire::encoding enc, errc code, const std::string& message,
                            uint64_t sequence, uint64_t request_id, int32_t index) {
  v1::ServerFrame f;
  wire::set_error(f, code, message, sequence, request_id, index);
  send(f, enc);
}

template <class Stream>
void basic_ws_session<Stream>::send(const v1::ServerFrame& frame, wire::encoding enc) {
  if (closed_)
    return;
  std::string bytes;
  wire::encode(frame, enc, bytes);
  // Up to max_inflight_batches acks, and max_send_queue_extra_frames frames more.
  bool too_many = queue_.size() >= std::size_t{limits_.max_inflight_batches}
                                     + gateway_limits_.max_send_queue_extra_frames;
  bool too_big = !queue_.empty()
                 && queued_bytes_ + bytes.size() > gateway_limits_.max_send_queue_bytes;
  if (too_many || too_big)
    return close_slow_client();
  queued_bytes_ += bytes.size();
  queue_.emplace_back(std::move(bytes), enc == wire::encoding::binary);
  do_write();
}

template <class Stream>
void basic_ws_session<Stream>::do_write() {
  if (writing_ || queue_.empty())
    return;
  writing_ = true;
  ws_.binary(queue_.front().second);
  ws_.async_write(net::buffer(queue_.front().first),
                  beast::bind_front_handler(&basic_ws_session::on_write_done,
                                            this->shared_from_this()));
}

template <class Stream>
void basic_ws_session<Stream>::on_write_done(beast::error_code ec, std::size_t) {
  writing_ = false;
  if (ec)
    return fail(ec, "write");
  queued_bytes_ -= queue_.front().first.size();
  queue_.pop_front();
  if (!queue_.empty())
    return do_write();
  if (close_pending_) {
    close_pending_ = false;
    ws_.async_close(close_reason_, [self = this->shared_from_this()](beast::error_code) {});
  }
}

template <class Stream>
void basic_ws_session<Stream>::close_with(websocket::close_code code, const std::string& reason) {
  if (closed_ || close_pending_)
    return;
  closed_ = true; // read no more
  idle_timer_.cancel();
  window_timer_.cancel();
  close_reason_ = websocket::close_reason{code, reason};
  if (writing_ || !queue_.empty()) {
    close_pending_ = true;
    return;
  }
  ws_.async_close(close_reason_, [self = this->shared_from_this()](beast::error_code) {});
}

template <class Stream>
void basic_ws_session<Stream>::close_slow_client() {
  // Frames not yet being written are dropped: the memory goes back now. The close
  // frame follows the write in flight; a client that does not take that either is
  // cut off after a grace period (ws_slow_client_grace_ms).
  while (queue_.size() > (writing_ ? 1u : 0u)) {
    queued_bytes_ -= queue_.back().first.size();
    queue_.pop_back();
  }
  pending_windows_.clear();
  close_with(websocket::close_code::policy_error, "client reads too slowly");
  cut_timer_.expires_after(
    std::chrono::milliseconds(gateway_limits_.ws_slow_client_grace_ms));
  cut_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
    if (ec)
      return;
    beast::error_code ignored;
    beast::get_lowest_layer(self->ws_).socket().close(ignored);
  });
}

template <class Stream>
void basic_ws_session<Stream>::fail(beast::error_code ec, const char*) {
  // Closed or aborted connections are the normal end of a session.
  closed_ = true;
  idle_timer_.cancel();
  window_timer_.cancel();
  cut_timer_.cancel();
  if (session_) {
    session_->close();
    session_.reset();
  }
  (void) ec;
}

template class basic_ws_session<plain_stream>;
template class basic_ws_session<tls_stream>;

std::shared_ptr<ws_session>
make_ws_session(plain_stream&& stream, backend& be, const gateway_limits& limits,
                std::shared_ptr<const credential_store> credentials,
                std::shared_ptr<void> slot, offload_fn offload) {
  return std::make_shared<basic_ws_session<plain_stream>>(
    std::move(stream), be, limits, std::move(credentials), std::move(slot),
    std::move(offload));
}

std::shared_ptr<ws_session>
make_ws_session(tls_stream&& stream, backend& be, const gateway_limits& limits,
                std::shared_ptr<const credential_store> credentials,
                std::shared_ptr<void> slot, offload_fn offload) {
  return std::make_shared<basic_ws_session<tls_stream>>(
    std::move(stream), be, limits, std::move(credentials), std::move(slot),
    std::move(offload));
}

} // namespace tether::gateway
