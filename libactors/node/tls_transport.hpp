#pragma once

#include <memory>
#include <string>

#include <caf/fwd.hpp>
#include <caf/io/middleman_actor.hpp>

namespace tether::internal {

class peer_registry;

/// Spawns a middleman actor (the `connect_atom` / `publish_atom` interface of CAF's
/// `middleman::actor_handle()`) whose connections run over mutual TLS: every
/// connection is a `tls_session` (tls_session.hpp) made from `openssl.certificate`,
/// `openssl.key` and `openssl.cafile`, so that a peer must present a certificate the
/// configured CA signed, and the BASP traffic behind it is the node's own broker's.
///
/// It replaces CAF 0.17.6's `openssl::manager::actor_handle()` for three reasons
/// (docs/security.md, "Node to node"):
/// - CAF's module never empties OpenSSL's per-thread error queue (its only reader
///   is a log statement that the Debian build compiles out), so an error left by
///   one connection (an unclean close, a refused handshake) makes `SSL_get_error`
///   report the next would-block read on any other connection of the multiplexer
///   thread as a failure, and CAF closes a healthy connection. Here the queue is
///   cleared before every call into a session.
/// - A refused handshake is invisible in CAF (no hook, no log). Here it is one line
///   on stderr, `tether: NODE: cluster: refused ...`, with the peer's address and
///   OpenSSL's reason.
/// - CAF's sessions cost three system calls of signal masking per read or write and
///   two reads per TLS record; `tls_session` needs neither.
/// - CAF's streams register for a write event before every write (two `epoll_ctl`
///   calls and one more turn of the event loop per message sent); these streams
///   write at once and register only for what the socket did not take.
///
/// Every connection's BASP stream passes a `basp_guard` (peer_identity.hpp): the
/// node id a peer announces is bound in `registry` to its certificate's names.
///
/// `node` prefixes the log lines. The actor is hidden (it does not keep the system
/// alive); send it an exit message at shutdown. Thread-safe: call from any thread.
caf::io::middleman_actor spawn_tls_middleman(caf::actor_system& sys, std::string node,
                                             std::shared_ptr<peer_registry> registry);

/// Spawns CAF's middleman actor for a node without TLS between nodes, with the
/// streams of the TLS middleman without TLS: they write at once, and read ahead
/// (one `recv` takes what waits in the socket, where CAF's take three per message:
/// header, payload and a last one that would block). The node listens and dials
/// through it. And a dialed connection is handed to the BASP broker only once the
/// peer's first bytes arrived: CAF 0.17.6's broker closes a dialed connection at its next
/// heartbeat tick until it has heard from the peer, so under a round trip longer
/// than the tick no connection would ever be made (tls_transport.cpp). The TLS
/// middleman above does the same after its TLS handshake. Hidden and detached; send
/// it an exit message at shutdown.
caf::io::middleman_actor spawn_plain_middleman(caf::actor_system& sys);

} // namespace tether::internal
