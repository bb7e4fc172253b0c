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

  /// Whether a live connection other than `conn` holds `node`.
  bool held_elsewhere(const void* conn, const caf::node_id& node) const;

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
/// reads it, and keeps the peer from speaking for a node that is not its own:
///
/// - Every handshake on the connection must announce the same node id, and the
///   first binds it to the certificate's names (`peer_registry::bind`); a refused
///   binding or a changed id closes the connection.
/// - A relayed frame (routed message, monitor, down message) names its original
///   sender's node. When that node is this connection's own, or unknown here, the
///   frame passes. When another live connection holds it (the sender is a direct
///   peer, so it would not relay), or it is this node, the frame is a forgery: the
///   guard changes the frame's destination node id in place, so that CAF finds no
///   route and drops it, and counts it.
///
/// Costs a header parse per frame; only the frames above are decoded further.
class basp_guard {
public:
  basp_guard(std::shared_ptr<peer_registry> registry, std::vector<std::string> names,
             caf::node_id self);
  ~basp_guard();
  basp_guard(const basp_guard&) = delete;
  basp_guard& operator=(const basp_guard&) = delete;

  /// Inspects the next `n` bytes the peer sent, in order, and may alter them (see
  /// above). False with `why` set when the connection must close.
  bool inspect(char* data, size_t n, std::string& why);

  /// Frames dropped as forgeries so far.
  uint64_t dropped() const {
    return dropped_;
  }

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
  void alter(char* data, size_t n);

  std::shared_ptr<peer_registry> registry_;
  std::vector<std::string> names_;
  caf::node_id self_;
  caf::node_id peer_;
  // Framing: a 32-byte header, then `payload_len` bytes.
  std::vector<char> header_;
  uint8_t operation_ = 0;
  uint64_t payload_left_ = 0;  ///< bytes of the current payload still to come
  uint64_t payload_pos_ = 0;   ///< offset in the current payload
  uint64_t payload_len_ = 0;
  bool in_payload_ = false;
  bool want_prefix_ = false;   ///< the payload's leading node id(s) are collected
  std::vector<char> prefix_;
  uint64_t alter_from_ = 0;    ///< payload offsets [from, to) get inverted
  uint64_t alter_to_ = 0;
  uint64_t dropped_ = 0;
};

} // namespace tether::internal
