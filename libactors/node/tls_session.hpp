#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <caf/io/network/native_socket.hpp>
#include <caf/io/network/rw_state.hpp>

namespace tether::internal {

/// The files a node's TLS between nodes is made from (`openssl.*` options).
struct tls_files {
  std::string certificate; ///< PEM, intermediates after it
  std::string key;         ///< PEM
  std::string cafile;      ///< CA certificate(s) a peer's certificate must chain to
  std::string capath;      ///< or a directory of them
  std::string passphrase;  ///< of `key`, if it is encrypted
};

/// One TLS connection between two nodes over a non-blocking socket: mutual
/// authentication (each side presents its certificate, signed by `cafile`), TLS 1.2
/// or later.
///
/// It replaces CAF 0.17.6's `caf::openssl::session` on the cluster transport for
/// cost, not function. CAF's session blocks SIGPIPE around every call (two
/// `pthread_sigmask` calls and a `sigtimedwait`, three system calls per read or
/// write), reads each TLS record with two `read` calls (its header, then its body)
/// and writes each record with its own `write`. Here the socket is driven by a BIO
/// that collects the records of one call into OpenSSL and sends them with one `send`
/// with `MSG_NOSIGNAL` (no signal to block), and OpenSSL reads ahead: one `recv`
/// takes whatever the socket holds, and `pending()` tells the reader to go on while
/// complete records wait in the session's buffer.
///
/// When the socket does not take all of a write's records, the rest is sent first
/// on the next `write_some`, and the write reports one byte less than it encrypted
/// so that the stream, whose buffer is then not done, keeps asking to write; the
/// call that sends the rest reports that byte.
class tls_session {
public:
  using native_socket = caf::io::network::native_socket;
  using rw_state = caf::io::network::rw_state;

  /// What one step of the handshake needs next.
  enum class step { done, want_read, want_write, failed };

  ~tls_session();
  tls_session(const tls_session&) = delete;
  tls_session& operator=(const tls_session&) = delete;

  /// A session on `fd` (the server side if `accepted`), its handshake started. The
  /// files are read anew for every session, so replaced files take effect for new
  /// connections. Null with `why` set if they do not load; the reason of a failed
  /// handshake stays in OpenSSL's error queue.
  static std::unique_ptr<tls_session> make(const tls_files& files, native_socket fd,
                                           bool accepted, std::string& why);

  /// Drives the handshake one step without blocking.
  step handshake();

  /// As a CAF stream policy reads: `success` with `result` bytes (0: nothing to read
  /// now, or the handshake waits), `failure` when the connection broke or closed.
  rw_state read_some(size_t& result, void* buf, size_t len);

  /// As a CAF stream policy writes. With `len` 0 it only drives the handshake:
  /// `indeterminate` once nothing is left to do.
  rw_state write_some(size_t& result, const void* buf, size_t len);

  /// The socket and the records waiting to be sent on it (tls_session.cpp).
  struct socket_io;

  /// Whether the session holds bytes read from the socket that were not read from
  /// it yet (decrypted or not): the reader must call `read_some` again, the socket
  /// may never say so.
  bool pending() const;

  /// The names the peer's certificate gives it (`certificate_names`), once the
  /// handshake is done; empty before.
  std::vector<std::string> peer_names() const;

private:
  tls_session();

  /// Drives the handshake; true when application data of `len` bytes may flow now,
  /// else false with `state` set to what the stream is answered.
  bool ready(bool writing, size_t len, rw_state& state);

  /// What a failed call of the SSL object means for the stream.
  rw_state outcome(int ret);

  struct handles;
  std::unique_ptr<handles> h_;
  std::unique_ptr<socket_io> io_;
  bool handshaking_ = true;
  /// Bytes the stream gave that were encrypted and not yet reported as written.
  size_t owed_ = 0;
};

} // namespace tether::internal
