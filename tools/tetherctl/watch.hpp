#pragma once

#include "tetherctl/ctl_options.hpp"

#include <chrono>
#include <iosfwd>
#include <memory>

namespace boost::asio::ssl {
class context;
}

namespace tether::tools::ctl {

/// Interval of the `ping` messages `watch` sends to stay within the node's idle timeout
/// (default 60 s; docs/protocol.md section 11 asks for one at least every half of it).
inline constexpr std::chrono::seconds watch_ping_interval{10};

/// Largest message `watch` accepts from the node.
inline constexpr std::size_t watch_max_message_bytes = 64 * 1024 * 1024;

/// Runs `tetherctl watch KEY...`: opens ws://SERVER/v1/stream (wss:// over TLS with
/// `tls` for a TLS server) with JSON text frames,
/// says hello, subscribes to the keys and prints the initial state and every window
/// update (tables, or with `--json` each frame's text as received, one per line) until
/// SIGINT/SIGTERM or `opts.windows` window closes. `opts.timeout` bounds the setup up to
/// the initial update. Returns the process exit code: 0 after a clean stop, 1 when the
/// node rejects the hello or the subscription or drops the connection, 3 when the node
/// cannot be reached.
int run_watch(const ctl_options& opts, std::shared_ptr<boost::asio::ssl::context> tls,
              std::ostream& out, std::ostream& err);

} // namespace tether::tools::ctl
