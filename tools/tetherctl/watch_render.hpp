#pragma once

#include "common/result.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tether::tools::ctl {

/// A `ServerFrame` received as a text (JSON) WebSocket message, reduced to what `watch`
/// needs: which request it is and its inner object.
struct stream_frame {
  enum class type { welcome, window_update, error, pong, other };
  type kind = type::other;
  /// The object under the frame's single key (`{"windowUpdate": {...}}` → `{...}`).
  boost::json::object body;
};

/// Decodes one text message of the stream protocol (proto3 JSON mapping; lowerCamelCase or
/// snake_case names). Fails on text that is not a JSON object.
result<stream_frame> parse_stream_frame(std::string_view text);

/// `ClientFrame{hello}` as JSON text.
std::string make_hello_json(const std::string& producer_id, const std::string& token);

/// `ClientFrame{subscribe}` as JSON text; 64-bit ids are written as strings.
std::string make_subscribe_json(std::uint64_t request_id, const std::vector<std::string>& keys);

/// `ClientFrame{ping}` as JSON text.
std::string make_ping_json(std::uint64_t nonce);

/// The one-line description of an `Error`: `CODE: message`, plus `(retryable)`.
std::string render_stream_error(const boost::json::object& error);

/// The `request_id` of an `Error` or `WindowUpdate` (string or number), 0 if absent.
std::uint64_t request_id_of(const boost::json::object& body);

/// True when a `WindowUpdate` is the initial answer to a subscribe (window start 0).
bool is_initial_update(const boost::json::object& update);

/// Human-readable text for one `WindowUpdate`: a heading naming the window and a table
/// with one row per series (fields the protocol leaves unspecified for a kind show `-`).
result<std::string> render_window_update(const boost::json::object& update);

} // namespace tether::tools::ctl
