#include "node/peer_identity.hpp"

#include <algorithm>
#include <utility>

#include <caf/binary_deserializer.hpp>
#include <caf/io/basp/header.hpp>
#include <caf/io/basp/message_type.hpp>

namespace tether::internal {

namespace {

using caf::io::basp::message_type;

/// The longest payload prefix read to find a frame's node ids. A node id of CAF's
/// default kind takes 32 bytes (an 8-byte kind, a 4-byte process id, a 20-byte host
/// id); a URI node id is a string, and the cluster never uses one.
constexpr size_t prefix_cap = 256;

bool is_handshake(uint8_t op) {
  return op == static_cast<uint8_t>(message_type::server_handshake)
         || op == static_cast<uint8_t>(message_type::client_handshake);
}

} // namespace

// -- peer_registry ------------------------------------------------------------------

bool peer_registry::bind(const void* conn, const caf::node_id& node,
                         std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& e : entries_) {
    if (e.conn == conn)
      return e.node == node && e.names == names;
    if (e.node == node && e.names != names)
      return false;
  }
  entries_.push_back(entry{conn, node, std::move(names)});
  return true;
}

void peer_registry::release(const void* conn) {
  std::lock_guard<std::mutex> guard{mtx_};
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [conn](const entry& e) { return e.conn == conn; }),
                 entries_.end());
}

std::vector<std::string> peer_registry::names_of(const caf::node_id& node) const {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& e : entries_)
    if (e.node == node)
      return e.names;
  return {};
}

// -- basp_guard ---------------------------------------------------------------------

basp_guard::basp_guard(std::shared_ptr<peer_registry> registry,
                       std::vector<std::string> names, caf::node_id self)
  : registry_(std::move(registry)), names_(std::move(names)), self_(std::move(self)) {
  header_.reserve(caf::io::basp::header_size);
  prefix_.reserve(prefix_cap);
}

basp_guard::~basp_guard() {
  registry_->release(this);
}

bool basp_guard::inspect(const char* data, size_t n, std::string& why) {
  while (n > 0) {
    if (!in_payload_) {
      auto take = std::min(n, caf::io::basp::header_size - header_.size());
      header_.insert(header_.end(), data, data + take);
      data += take;
      n -= take;
      if (header_.size() == caf::io::basp::header_size && !on_header(why))
        return false;
      continue;
    }
    auto take = static_cast<size_t>(std::min<uint64_t>(n, payload_left_));
    if (want_prefix_) {
      auto room = std::min(take, prefix_cap - prefix_.size());
      prefix_.insert(prefix_.end(), data, data + room);
      if (!on_prefix(why))
        return false;
    }
    data += take;
    n -= take;
    payload_left_ -= take;
    if (payload_left_ == 0)
      in_payload_ = false;
  }
  return true;
}

bool basp_guard::on_header(std::string& why) {
  // The header as CAF 0.17's binary serializer writes it: the operation, two
  // padding bytes, the flags, then the payload length as a big-endian 32-bit
  // integer (operation data and actor ids follow and do not matter here). Read by
  // hand: this runs for every frame.
  // The unit tests build their frames with CAF's serializer, so they check this.
  auto byte = [this](size_t i) {
    return static_cast<uint32_t>(static_cast<uint8_t>(header_[i]));
  };
  operation_ = static_cast<uint8_t>(header_[0]);
  payload_len_ = byte(4) << 24 | byte(5) << 16 | byte(6) << 8 | byte(7);
  header_.clear();
  if (operation_ > static_cast<uint8_t>(message_type::heartbeat)) {
    why = "an unknown BASP operation";
    return false;
  }
  payload_left_ = payload_len_;
  prefix_.clear();
  want_prefix_ = is_handshake(operation_);
  if (payload_len_ == 0) {
    if (want_prefix_) {
      why = "a BASP handshake without payload";
      return false;
    }
    return true;
  }
  in_payload_ = true;
  return true;
}

bool basp_guard::on_prefix(std::string& why) {
  caf::binary_deserializer source{static_cast<caf::execution_unit*>(nullptr),
                                  prefix_.data(), prefix_.size()};
  caf::node_id origin;
  if (auto err = source(origin)) {
    // Incomplete: wait for more, unless no more of it can come.
    if (prefix_.size() < std::min<uint64_t>(payload_len_, prefix_cap))
      return true;
    why = "a BASP frame whose node id cannot be read";
    return false;
  }
  want_prefix_ = false;
  if (!origin) {
    why = "a handshake without a node id";
    return false;
  }
  if (peer_ && peer_ != origin) {
    why = "a second handshake for another node id";
    return false;
  }
  if (!peer_ && !registry_->bind(this, origin, names_)) {
    why = "a handshake for a node id that another member's certificate holds";
    return false;
  }
  peer_ = origin;
  return true;
}


} // namespace tether::internal
