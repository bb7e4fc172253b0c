#include "node/tls_session.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "node/cluster_tls.hpp"
#include "node/openssl_reason.hpp"

namespace tether::internal {

// -- the socket BIO ----------------------------------------------------------------
//
// Reads come straight from the socket. Writes are collected: everything one call
// into OpenSSL produces (a large write is several TLS records) is appended to the
// session's outgoing buffer and sent after the call with one `send`, with
// MSG_NOSIGNAL (OpenSSL's socket BIO writes each record with its own write(2), which
// raises SIGPIPE when the peer is gone). The BIO's data is the session's socket
// state; the BIO owns neither it nor the descriptor.

struct tls_session::socket_io {
  int fd = -1;
  std::string out; ///< encrypted bytes not sent yet
  size_t sent = 0; ///< of `out`

  bool empty() const noexcept {
    return sent == out.size();
  }

  /// Sends what it can of `out` without blocking; false on a broken connection.
  bool flush() {
    while (!empty()) {
      auto n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        return errno == EAGAIN || errno == EWOULDBLOCK; // the rest waits
      }
      sent += static_cast<size_t>(n);
    }
    out.clear();
    sent = 0;
    return true;
  }
};

namespace {

using socket_io = tls_session::socket_io;

socket_io& io_of(BIO* b) {
  return *static_cast<socket_io*>(BIO_get_data(b));
}

int bio_write(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  io_of(b).out.append(data, static_cast<size_t>(len));
  return len;
}

int bio_read(BIO* b, char* data, int len) {
  BIO_clear_retry_flags(b);
  for (;;) {
    auto n = ::recv(io_of(b).fd, data, static_cast<size_t>(len), 0);
    if (n >= 0)
      return static_cast<int>(n); // 0: the peer closed its side
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      BIO_set_retry_read(b);
    return -1;
  }
}

long bio_ctrl(BIO*, int cmd, long, void*) {
  // The session sends after every call into OpenSSL: a flush asks nothing more.
  // Everything else (pending bytes, close flags, kernel TLS) is "not supported".
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

const BIO_METHOD* socket_method() {
  static const BIO_METHOD* method = [] {
    auto* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                           "tether cluster socket");
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    return m;
  }();
  return method;
}

// -- the context -------------------------------------------------------------------

struct ctx_free {
  void operator()(SSL_CTX* c) const {
    SSL_CTX_free(c);
  }
};

using ctx_ptr = std::unique_ptr<SSL_CTX, ctx_free>;

int passphrase_cb(char* buf, int size, int, void* user) {
  auto& pass = *static_cast<const std::string*>(user);
  if (size <= 0)
    return 0;
  auto n = std::min(pass.size(), static_cast<size_t>(size - 1));
  std::memcpy(buf, pass.data(), n);
  buf[n] = '\0';
  return static_cast<int>(n);
}

/// Bytes a session reads from its socket at once (read-ahead): several records.
constexpr size_t read_buffer_bytes = 64 * 1024;

/// Most bytes one write encrypts (and so holds in the outgoing buffer) at once.
constexpr size_t max_write_bytes = 256 * 1024;

/// A context for one session: this node's certificate and key, peers verified
/// against the CA. Null with `why` set on failure.
ctx_ptr make_context(const tls_files& f, std::string& why) {
  ctx_ptr ctx{SSL_CTX_new(TLS_method())};
  if (!ctx) {
    why = "cannot create an OpenSSL context: " + openssl_reason();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), f.certificate.c_str()) != 1) {
    why = "cannot load openssl.certificate " + f.certificate + ": " + openssl_reason();
    return nullptr;
  }
  if (!f.passphrase.empty()) {
    SSL_CTX_set_default_passwd_cb(ctx.get(), passphrase_cb);
    SSL_CTX_set_default_passwd_cb_userdata(ctx.get(), const_cast<std::string*>(&f.passphrase));
  }
  auto key_loaded = SSL_CTX_use_PrivateKey_file(ctx.get(), f.key.c_str(), SSL_FILETYPE_PEM);
  SSL_CTX_set_default_passwd_cb_userdata(ctx.get(), nullptr);
  if (key_loaded != 1) {
    why = "cannot load openssl.key " + f.key + ": " + openssl_reason();
    return nullptr;
  }
  const char* cafile = f.cafile.empty() ? nullptr : f.cafile.c_str();
  const char* capath = f.capath.empty() ? nullptr : f.capath.c_str();
  if ((cafile != nullptr || capath != nullptr)
      && SSL_CTX_load_verify_locations(ctx.get(), cafile, capath) != 1) {
    why = "cannot load openssl.cafile " + f.cafile + ": " + openssl_reason();
    return nullptr;
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  if (SSL_CTX_set_cipher_list(ctx.get(), "HIGH:!aNULL:!MD5") != 1) {
    why = "cannot set the cipher list: " + openssl_reason();
    return nullptr;
  }
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_default_read_buffer_len(ctx.get(), read_buffer_bytes);
  return ctx;
}

} // namespace

struct tls_session::handles {
  SSL* ssl = nullptr;

  ~handles() {
    SSL_free(ssl); // frees the BIO too
  }
};

tls_session::tls_session() : io_(std::make_unique<socket_io>()) {
}

tls_session::~tls_session() = default;

std::vector<std::string> tls_session::peer_names() const {
  if (handshaking_ || h_ == nullptr || h_->ssl == nullptr)
    return {};
  auto* cert = SSL_get1_peer_certificate(h_->ssl);
  if (cert == nullptr)
    return {};
  auto out = certificate_names(cert);
  X509_free(cert);
  return out;
}

std::unique_ptr<tls_session> tls_session::make(const tls_files& files, native_socket fd,
                                               bool accepted, std::string& why) {
  auto ctx = make_context(files, why);
  if (!ctx)
    return nullptr;
  std::unique_ptr<tls_session> s{new tls_session};
  s->h_ = std::make_unique<handles>();
  s->h_->ssl = SSL_new(ctx.get()); // holds its own reference to the context
  auto* bio = s->h_->ssl != nullptr ? BIO_new(socket_method()) : nullptr;
  if (bio == nullptr) {
    why = "cannot create an OpenSSL session: " + openssl_reason();
    return nullptr;
  }
  s->io_->fd = fd;
  BIO_set_data(bio, s->io_.get());
  SSL_set_bio(s->h_->ssl, bio, bio);
  SSL_set_read_ahead(s->h_->ssl, 1);
  if (accepted)
    SSL_set_accept_state(s->h_->ssl);
  else
    SSL_set_connect_state(s->h_->ssl);
  if (s->handshake() == step::failed)
    return nullptr; // the reason stays in OpenSSL's error queue
  return s;
}

tls_session::step tls_session::handshake() {
  if (!handshaking_)
    return step::done;
  if (!io_->flush())
    return step::failed;
  if (!io_->empty())
    return step::want_write;
  auto ret = SSL_do_handshake(h_->ssl);
  if (!io_->flush())
    return step::failed;
  if (ret == 1) {
    handshaking_ = false;
    return step::done;
  }
  switch (SSL_get_error(h_->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
      return io_->empty() ? step::want_read : step::want_write;
    case SSL_ERROR_WANT_WRITE:
      return step::want_write;
    default:
      return step::failed;
  }
}

bool tls_session::ready(bool writing, size_t len, rw_state& state) {
  switch (handshake()) {
    case step::done:
      if (len > 0)
        return true;
      state = rw_state::indeterminate;
      return false;
    case step::want_read:
      // A write of nothing only drives the handshake: the stream stops asking for
      // write events, the peer's answer arrives as a read event.
      state = writing && len == 0 ? rw_state::indeterminate : rw_state::success;
      return false;
    case step::want_write:
      state = rw_state::success;
      return false;
    case step::failed:
      break;
  }
  state = rw_state::failure;
  return false;
}

tls_session::rw_state tls_session::outcome(int ret) {
  switch (SSL_get_error(h_->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return rw_state::success; // nothing now: wait for the socket
    default:
      return rw_state::failure; // closed by the peer, reset, or a TLS error
  }
}

tls_session::rw_state tls_session::read_some(size_t& result, void* buf, size_t len) {
  result = 0;
  if (rw_state state; !ready(false, len, state))
    return state;
  size_t n = 0;
  auto ok = SSL_read_ex(h_->ssl, buf, len, &n);
  // A read can make OpenSSL answer (an alert, a key update): sent at once.
  if (!io_->flush())
    return rw_state::failure;
  if (ok == 1) {
    result = n;
    return rw_state::success;
  }
  return outcome(0);
}

tls_session::rw_state tls_session::write_some(size_t& result, const void* buf,
                                              size_t len) {
  result = 0;
  // Records of an earlier call that the socket did not take yet go first. Until they
  // are sent, the stream must keep asking to write: the last byte it gave was
  // encrypted but not reported as written (`owed_`), so its buffer is not done.
  if (!io_->flush())
    return rw_state::failure;
  if (!io_->empty())
    return rw_state::success;
  if (owed_ > 0) {
    result = std::exchange(owed_, 0);
    return rw_state::success;
  }
  if (rw_state state; !ready(true, len, state))
    return state;
  size_t n = 0;
  // The BIO takes every record, so OpenSSL writes everything it is given; bounded,
  // the outgoing buffer holds at most one call's records.
  if (SSL_write_ex(h_->ssl, buf, std::min(len, max_write_bytes), &n) != 1) {
    io_->flush();
    return outcome(0);
  }
  if (!io_->flush())
    return rw_state::failure;
  if (io_->empty() || n == 0) {
    result = n;
  } else {
    result = n - 1;
    owed_ = 1;
  }
  return rw_state::success;
}

bool tls_session::pending() const {
  return SSL_has_pending(h_->ssl) == 1;
}

} // namespace tether::internal
