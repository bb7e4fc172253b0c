#include "node/tls_session.hpp"

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>

using tether::internal::tls_files;
using tether::internal::tls_session;
using rw_state = tls_session::rw_state;

namespace {

namespace fs = std::filesystem;

/// A self-signed certificate and its key in a directory of their own; as its own
/// CA file it makes a node that trusts exactly itself.
struct identity {
  fs::path dir;
  tls_files files;

  explicit identity(const std::string& name) {
    dir = fs::temp_directory_path() / ("tether-tls-session-" + name + "-"
                                       + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{EVP_EC_gen("P-256"),
                                                             EVP_PKEY_free};
    std::unique_ptr<X509, decltype(&X509_free)> cert{X509_new(), X509_free};
    REQUIRE((key && cert));
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
    X509_set_pubkey(cert.get(), key.get());
    auto* subject = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(name.c_str()), -1,
                               -1, 0);
    X509_set_issuer_name(cert.get(), subject);
    REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);
    files.certificate = (dir / "cert.pem").string();
    files.key = (dir / "key.pem").string();
    files.cafile = files.certificate;
    write(files.certificate, [&](FILE* f) { return PEM_write_X509(f, cert.get()); });
    write(files.key, [&](FILE* f) {
      return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    });
  }

  ~identity() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  template <class F>
  static void write(const std::string& path, F f) {
    FILE* out = std::fopen(path.c_str(), "w");
    REQUIRE(out != nullptr);
    auto ok = f(out);
    std::fclose(out);
    REQUIRE(ok == 1);
  }
};

/// Two connected non-blocking stream sockets.
struct socket_pair {
  int fds[2] = {-1, -1};

  socket_pair() {
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    for (int fd : fds)
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }

  ~socket_pair() {
    close(0);
    close(1);
  }

  void close(int i) {
    if (fds[i] >= 0)
      ::close(fds[i]);
    fds[i] = -1;
  }
};

/// Drives both handshakes in turn until both are done or one fails (at most 100
/// turns: a handshake takes a few).
bool handshake(tls_session& client, tls_session& server) {
  for (int turn = 0; turn < 100; ++turn) {
    auto c = client.handshake();
    auto s = server.handshake();
    if (c == tls_session::step::failed || s == tls_session::step::failed)
      return false;
    if (c == tls_session::step::done && s == tls_session::step::done)
      return true;
  }
  return false;
}

/// A client session (with `client` files) and a server session (with `server`
/// files) on the two ends of `sp`, their handshakes not yet driven.
std::pair<std::unique_ptr<tls_session>, std::unique_ptr<tls_session>>
sessions(const tls_files& client, const tls_files& server, socket_pair& sp) {
  std::string why;
  auto c = tls_session::make(client, sp.fds[0], false, why);
  auto s = tls_session::make(server, sp.fds[1], true, why);
  REQUIRE(why.empty());
  REQUIRE((c && s));
  return {std::move(c), std::move(s)};
}

/// Reads from `s` as CAF's stream does (on while it has bytes or `pending()`) until
/// `want` bytes arrived or nothing more comes.
std::string read_all(tls_session& s, size_t want, size_t chunk) {
  std::string out;
  std::vector<char> buf(chunk);
  for (int idle = 0; out.size() < want && idle < 3;) {
    size_t n = 0;
    auto res = s.read_some(n, buf.data(), buf.size());
    REQUIRE(res != rw_state::failure);
    out.append(buf.data(), n);
    idle = n == 0 ? idle + 1 : 0;
  }
  return out;
}

} // namespace

TEST_CASE("tls sessions authenticate each other and carry data in both directions",
          "[tls]") {
  identity node{"node"};
  socket_pair sp;
  auto [client, server] = sessions(node.files, node.files, sp);
  REQUIRE(handshake(*client, *server));

  // Larger than one TLS record, through socket buffers much smaller than the data,
  // written as CAF's stream writes (on while not all is reported written) and read
  // in pieces smaller than a record: records the socket did not take wait in the
  // session, what the session read ahead is handed out by later reads.
  int small = 4096;
  ::setsockopt(sp.fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  ::setsockopt(sp.fds[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  std::string msg(300 * 1000, 'x');
  for (size_t i = 0; i < msg.size(); ++i)
    msg[i] = static_cast<char>('a' + i % 26);
  size_t sent = 0;
  std::string got;
  int stalls = 0;
  for (int turn = 0; turn < 100000 && got.size() < msg.size(); ++turn) {
    if (sent < msg.size()) {
      size_t n = 0;
      REQUIRE(client->write_some(n, msg.data() + sent, msg.size() - sent)
              == rw_state::success);
      sent += n;
      stalls += n == 0 ? 1 : 0;
    }
    got += read_all(*server, msg.size() - got.size(), 40);
  }
  CHECK(sent == msg.size());
  CHECK(got == msg);
  CHECK(stalls > 0); // the small buffers did make the session hold records back
  CHECK_FALSE(server->pending());

  size_t n = 0;
  REQUIRE(server->write_some(n, "pong", 4) == rw_state::success);
  CHECK(n == 4);
  CHECK(read_all(*client, 4, 64) == "pong");
}

TEST_CASE("a tls session refuses a peer whose certificate its CA did not sign",
          "[tls]") {
  identity node{"node"};
  identity stranger{"stranger"};
  socket_pair sp;
  auto [client, server] = sessions(stranger.files, node.files, sp);
  CHECK_FALSE(handshake(*client, *server));
}

TEST_CASE("a tls session reports a closed peer as a failure, without SIGPIPE", "[tls]") {
  // With SIGPIPE at its default a write to a closed socket would end this process.
  auto previous = std::signal(SIGPIPE, SIG_DFL);
  identity node{"node"};
  socket_pair sp;
  auto [client, server] = sessions(node.files, node.files, sp);
  REQUIRE(handshake(*client, *server));
  server.reset();
  sp.close(1);
  std::string block(64 * 1024, 'y');
  rw_state res = rw_state::success;
  for (int i = 0; i < 100 && res == rw_state::success; ++i) {
    size_t n = 0;
    res = client->write_some(n, block.data(), block.size());
  }
  CHECK(res == rw_state::failure);
  size_t n = 0;
  char buf[16];
  CHECK(client->read_some(n, buf, sizeof(buf)) == rw_state::failure);
  std::signal(SIGPIPE, previous);
}

TEST_CASE("a tls session is not made from files that do not load", "[tls]") {
  socket_pair sp;
  tls_files missing{"/nonexistent/cert.pem", "/nonexistent/key.pem",
                    "/nonexistent/ca.pem", {}, {}};
  std::string why;
  CHECK_FALSE(tls_session::make(missing, sp.fds[0], false, why));
  CHECK(why.find("openssl.certificate /nonexistent/cert.pem") != std::string::npos);
}
