#pragma once

#include <cstdint>
#include <string_view>

namespace tether {

/// Every error Tether reports, to clients and between actors. The numeric values equal
/// the wire protocol's `tether.v1.ErrorCode`, so a code crosses the gateway unchanged.
enum class errc : uint8_t {
  none = 0,
  malformed_frame = 1,
  frame_too_large = 2,
  hello_required = 3,
  unauthenticated = 4,
  bad_hello = 5,
  invalid_sequence = 6,
  sequence_too_old = 7,
  empty_batch = 8,
  too_many_samples = 9,
  invalid_metric_name = 10,
  invalid_label_name = 11,
  duplicate_label = 12,
  too_many_labels = 13,
  key_too_long = 14,
  unknown_kind = 15,
  non_finite_value = 16,
  negative_counter = 17,
  invalid_timestamp = 18,
  kind_conflict = 19,
  invalid_key = 20,
  unavailable = 21,
  internal = 22,
  input_limit = 23,
  permission_denied = 24,
  sequence_jump = 25,
  subscription_limit = 26,
};

/// The wire name of a code, e.g. "KEY_TOO_LONG".
std::string_view to_string_view(errc code) noexcept;

/// Whether sending the same request again later may succeed.
constexpr bool retryable(errc code) noexcept {
  return code == errc::unavailable;
}

} // namespace tether
