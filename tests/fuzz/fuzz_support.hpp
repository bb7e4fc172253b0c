#pragma once

// What every harness of tests/fuzz shares: quiet libraries, the node's defaults, the
// rule sets a node runs with, and the checks on what the node would send back.

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include <google/protobuf/stubs/logging.h>

#include "keys/utf8.hpp"
#include "rules/rule_set.hpp"
#include "tether/options.hpp"
#include "wire/codec.hpp"
#include "wire/tether.pb.h"

namespace tether::fuzz {

/// The clock every harness runs at: the samples of docs/protocol.md's examples are
/// neither late nor in the future. A fixed value keeps every input reproducible.
inline constexpr int64_t now_ms = 1700000060000;

/// Stops libprotobuf from logging (it writes a line per string field that is not
/// UTF-8): a harness writes nothing per input. Call once from LLVMFuzzerInitialize.
inline void silence_libraries() {
  google::protobuf::SetLogHandler(nullptr);
}

/// A broken property: names it on stderr and aborts, which libFuzzer reports as a
/// crash with the input that caused it.
[[noreturn]] inline void violated(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz: property violated: %s [%.*s]\n", what,
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

inline void require(bool holds, const char* what, std::string_view detail = {}) {
  if (!holds)
    violated(what, detail);
}

/// The node's defaults (`tether::node_options{}`): limits, window, slice count.
inline const node_options& defaults() {
  static const node_options opts;
  return opts;
}

inline rules::rule_defaults rule_defaults_of_node() {
  rules::rule_defaults d;
  d.window_ms = defaults().window_ms;
  return d;
}

/// The rules a node without a rules file runs with: none.
inline const rules::rule_set& no_rules() {
  static const auto set = rules::rule_set::empty(rule_defaults_of_node());
  return *set;
}

/// The example rules file of docs/aggregation.md plus a regex rule and a `by` rule, so
/// that keying also runs every kind of rule match and label selection.
inline const rules::rule_set& example_rules() {
  static const std::shared_ptr<const rules::rule_set> set = [] {
    constexpr std::string_view text = R"({
      "max_input_series_per_node": 1000000,
      "rules": [
        {"name": "http_requests_by_service", "match": "http_requests_total",
         "where": [{"label": "env", "op": "=", "value": "prod"}],
         "without": ["pod", "instance"], "window_ms": 10000},
        {"name": "latency_by_route", "match_glob": "*_latency_seconds",
         "by": ["route"], "output": "route_latency_seconds",
         "quantiles": [0.5, 0.99]},
        {"name": "temps", "match_regex": "room_temp_[a-z]+",
         "where": [{"label": "room", "op": "=~", "value": "lab|hall"},
                   {"label": "zone", "op": "!~", "value": "x.*"}],
         "by": []}
      ]})";
    std::string error;
    auto parsed = rules::rule_set::parse(text, rule_defaults_of_node(), error);
    require(parsed != nullptr, "the harness' example rules parse", error);
    return parsed;
  }();
  return *set;
}

/// Encodes `frame` as the node sends it and checks what a strict client relies on:
/// every text the node sends is well-formed UTF-8 (docs/protocol.md).
inline void check_sent(const v1::ServerFrame& frame, wire::encoding enc) {
  std::string bytes;
  wire::encode(frame, enc, bytes);
  if (frame.has_error())
    require(keys::valid_utf8(frame.error().message()),
            "error messages are valid UTF-8", frame.error().message());
  if (enc == wire::encoding::json)
    require(keys::valid_utf8(bytes), "text frames are valid UTF-8", bytes);
}

/// Sends an error the way a session does (`ws_session::send_error`).
inline void send_error(wire::encoding enc, errc code, const std::string& message,
                       uint64_t sequence = 0, uint64_t request_id = 0,
                       int32_t index = -1) {
  v1::ServerFrame f;
  wire::set_error(f, code, message, sequence, request_id, index);
  check_sent(f, enc);
}

} // namespace tether::fuzz
