#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/node_id.hpp>

namespace tether::internal {

/// Which certificate names stand behind each CAF node id a connection between nodes
/// claimed. CAF attributes a message to the node id its connection announced in the
/// BASP handshake, and that id is chosen by the peer; this table binds it to the
/// names of the certificate the peer showed on the same connection, so that an
/// actor handle's node says which member it belongs to (docs/security.md, "What
/// identity is checked").
///
/// A node id is bound by the first handshake on a connection and stays bound while
/// that connection lives. A second connection may bind the same node id only with
/// the same names (CAF opens redundant connections and closes them). Thread-safe:
/// the multiplexer thread binds, actors look up.
class peer_registry {
public:
  /// Binds `node` to `names` for connection `conn`. False (nothing changes) when a
  /// live connection holds `node` with other names, or `conn` holds another node.
  bool bind(const void* conn, const caf::node_id& node, std::vector<std::string> names);

  /// Forgets what `conn` bound (its connection closed).
  void release(const void* conn);

  /// The certificate names `node` is bound to; empty when no live connection holds
  /// it.
  std::vector<std::string> names_of(const caf::node_id& node) const;

private:
  struct entry {
    const void* conn;
    caf::node_id node;
    std::vector<std::string> names;
  };
  mutable std::mutex mtx_;
  std::vector<entry> entries_; ///< one per live connection; a cluster has few
};

/// Watches the plaintext BASP stream one connection delivers, before CAF's broker
/// reads it, and keeps the peer from announcing a node id that is not its own:
/// every handshake on the connection must announce the same node id, and the first
/// binds it to the certificate's names (`peer_registry::bind`); a refused binding
/// or a changed id closes the connection. Messages sent directly over the
/// connection are then attributed (by CAF) to the node id bound to the peer's
/// certificate.
///
/// Frames that name another sender's node (routed messages, monitor and down
/// messages) pass untouched: CAF relays messages over a third node and keeps the
/// original sender on delegated requests, and neither can be told apart from a
/// forgery here (docs/security.md, "What identity is checked").
///
/// Costs a header parse per frame; only handshakes are decoded further.
class basp_guard {
public:
  basp_guard(std::shared_ptr<peer_registry> registry, std::vector<std::string> names,
             caf::node_id self);
  ~basp_guard();
  basp_guard(const basp_guard&) = delete;
  basp_guard& operator=(const basp_guard&) = delete;

  /// Inspects the next `n` bytes the peer sent, in order. False with `why` set
  /// when the connection must close.
  bool inspect(const char* data, size_t n, std::string& why);

  /// The node id the connection's handshake announced (none before it).
  const caf::node_id& peer() const {
    return peer_;
  }

  /// The certificate's names.
  const std::vector<std::string>& names() const {
    return names_;
  }

private:
  bool on_header(std::string& why);
  bool on_prefix(std::string& why);

  std::shared_ptr<peer_registry> registry_;
  std::vector<std::string> names_;
  caf::node_id self_;
  caf::node_id peer_;
  // Framing: a 32-byte header, then `payload_len` bytes.
  std::vector<char> header_;
  uint8_t operation_ = 0;
  uint64_t payload_left_ = 0;  ///< bytes of the current payload still to come
  uint64_t payload_len_ = 0;
  bool in_payload_ = false;
  bool want_prefix_ = false;   ///< a handshake's leading node id is collected
  std::vector<char> prefix_;
};

} // namespace tether::internal
