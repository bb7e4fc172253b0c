#include "node/peer_identity.hpp"

#include <memory>
#include <string>
#include <vector>

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/io/basp/header.hpp>
#include <caf/io/basp/message_type.hpp>
#include <caf/sec.hpp>

#include <catch2/catch.hpp>

using tether::internal::basp_guard;
using tether::internal::peer_registry;
using caf::io::basp::message_type;

namespace {

caf::node_id node(uint8_t tag, uint32_t pid) {
  caf::node_id::default_data::host_id_type host{};
  host.fill(tag);
  return caf::make_node_id(pid, host);
}

/// One BASP frame as CAF's broker writes it: the header, then `payload`.
std::vector<char> frame(message_type op, const std::vector<char>& payload) {
  std::vector<char> out;
  caf::binary_serializer sink{static_cast<caf::execution_unit*>(nullptr), out};
  caf::io::basp::header hdr{op, 0, static_cast<uint32_t>(payload.size()), 0, 7, 9};
  REQUIRE(!sink(hdr));
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

template <class... Ts>
std::vector<char> payload(Ts&&... xs) {
  std::vector<char> out;
  caf::binary_serializer sink{static_cast<caf::execution_unit*>(nullptr), out};
  REQUIRE(!sink(std::forward<Ts>(xs)...));
  return out;
}

std::vector<char> client_handshake(const caf::node_id& me) {
  return frame(message_type::client_handshake, payload(me));
}

/// A routed message from `from` to `to` with a body after the two node ids.
std::vector<char> routed(const caf::node_id& from, const caf::node_id& to) {
  return frame(message_type::routed_message,
               payload(from, to, std::string{"the message itself"}));
}

/// The destination node id of routed frame `f` (after its 32-byte header).
caf::node_id destination_of(const std::vector<char>& f) {
  caf::binary_deserializer source{static_cast<caf::execution_unit*>(nullptr),
                                  f.data() + caf::io::basp::header_size,
                                  f.size() - caf::io::basp::header_size};
  caf::node_id from;
  caf::node_id to;
  REQUIRE(!source(from, to));
  return to;
}

/// Feeds `bytes` to `g` in pieces of `step` bytes (the TLS session delivers the
/// stream in arbitrary pieces); false as soon as the guard refuses.
bool feed(basp_guard& g, const std::vector<char>& bytes, size_t step, std::string& why) {
  for (size_t i = 0; i < bytes.size(); i += step)
    if (!g.inspect(bytes.data() + i, std::min(step, bytes.size() - i), why))
      return false;
  return true;
}

using names = std::vector<std::string>;

/// A guard whose connection showed a certificate for `name` and announced `id`.
std::unique_ptr<basp_guard> connected(const std::shared_ptr<peer_registry>& registry,
                                      const std::string& name, const caf::node_id& id,
                                      const caf::node_id& self) {
  auto g = std::make_unique<basp_guard>(registry, names{name}, self);
  std::string why;
  REQUIRE(feed(*g, client_handshake(id), 64, why));
  return g;
}

} // namespace

TEST_CASE("a connection's handshake binds its node id to the certificate's names",
          "[peer_identity]") {
  auto registry = std::make_shared<peer_registry>();
  auto self = node(1, 100);
  auto two = node(2, 200);
  for (size_t step : {size_t{1}, size_t{5}, size_t{4096}}) {
    CAPTURE(step);
    {
      basp_guard g{registry, {"tether-2"}, self};
      auto bytes = client_handshake(two);
      std::string why;
      REQUIRE(feed(g, bytes, step, why));
      CHECK(g.peer() == two);
      CHECK(registry->names_of(two) == names{"tether-2"});
      // A repeated handshake for the same node (CAF's select_connection_flag).
      auto again = client_handshake(two);
      CHECK(feed(g, again, step, why));
    }
    // The connection closed: nothing vouches for the node any more.
    CHECK(registry->names_of(two).empty());
  }
}

TEST_CASE("a peer cannot announce another member's node id", "[peer_identity]") {
  auto registry = std::make_shared<peer_registry>();
  auto self = node(1, 100);
  auto two = node(2, 200);
  auto four = node(4, 400);
  auto real = connected(registry, "tether-2", two, self);
  std::string why;

  SECTION("a first handshake with a node id another certificate holds") {
    basp_guard rogue{registry, {"tether-4"}, self};
    auto forged = client_handshake(two);
    CHECK_FALSE(feed(rogue, forged, 3, why));
    CHECK(why.find("another member's certificate") != std::string::npos);
    CHECK(registry->names_of(two) == names{"tether-2"});
  }
  SECTION("a second handshake that changes the node id") {
    basp_guard rogue{registry, {"tether-4"}, self};
    auto own = client_handshake(four);
    REQUIRE(feed(rogue, own, 3, why));
    auto forged = client_handshake(two);
    CHECK_FALSE(feed(rogue, forged, 3, why));
    CHECK(why.find("second handshake") != std::string::npos);
  }
  SECTION("a redundant connection of the same member is fine") {
    basp_guard second{registry, {"tether-2"}, self};
    auto again = client_handshake(two);
    CHECK(feed(second, again, 3, why));
  }
  SECTION("a handshake without a node id") {
    basp_guard rogue{registry, {"tether-4"}, self};
    auto none = frame(message_type::client_handshake, payload(caf::node_id{}));
    CHECK_FALSE(feed(rogue, none, 3, why));
  }
  SECTION("garbage where a node id belongs") {
    basp_guard rogue{registry, {"tether-4"}, self};
    auto junk = frame(message_type::client_handshake, std::vector<char>(40, '\x7f'));
    CHECK_FALSE(feed(rogue, junk, 3, why));
  }
}

TEST_CASE("relayed and delegated frames pass untouched", "[peer_identity]") {
  // CAF relays messages over a third node while a direct connection is missing,
  // and a delegated request keeps its original sender's node: both arrive as
  // routed messages naming a node other than the connection's (a cluster test
  // restarting a node lost requests when they were dropped).
  auto registry = std::make_shared<peer_registry>();
  auto self = node(1, 100);
  auto two = node(2, 200);
  auto three = node(3, 300);
  auto direct2 = connected(registry, "tether-2", two, self);
  auto relay_guard = connected(registry, "tether-3", three, self);
  auto& relay = *relay_guard;
  std::string why;
  for (size_t step : {size_t{1}, size_t{33}, size_t{4096}}) {
    CAPTURE(step);
    auto f = routed(two, self);
    auto d = frame(message_type::down_message,
                   payload(two, self, caf::error{caf::sec::request_timeout}));
    auto stream = f;
    stream.insert(stream.end(), d.begin(), d.end());
    auto copy = stream;
    REQUIRE(feed(relay, stream, step, why));
    CHECK(stream == copy);
    CHECK(destination_of(f) == self);
  }
  // The relay's own binding is unchanged by what it relays.
  CHECK(relay.peer() == three);
  CHECK(registry->names_of(two) == names{"tether-2"});
}

TEST_CASE("a stream that is not BASP closes the connection", "[peer_identity]") {
  auto registry = std::make_shared<peer_registry>();
  basp_guard g{registry, {"tether-2"}, node(1, 100)};
  std::vector<char> junk(64, '\x42'); // operation 0x42 does not exist
  std::string why;
  CHECK_FALSE(feed(g, junk, 64, why));
  CHECK(why == "an unknown BASP operation");
}
