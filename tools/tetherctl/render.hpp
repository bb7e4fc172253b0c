#pragma once

#include "common/result.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tether::tools::ctl {

/// One slice's assignment as listed by `GET /v1/directory`.
struct slice_assignment {
  std::uint64_t slice = 0;
  std::uint64_t epoch = 0;
  /// Empty when the slice has no primary.
  std::string primary;
  std::vector<std::string> followers;
};

/// A run of consecutive slices with the same primary, followers and epoch.
struct slice_range {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::uint64_t epoch = 0;
  std::string primary;
  std::vector<std::string> followers;

  friend bool operator==(const slice_range& x, const slice_range& y) {
    return x.first == y.first && x.last == y.last && x.epoch == y.epoch
           && x.primary == y.primary && x.followers == y.followers;
  }
};

/// Sorts `slices` by slice id and collapses runs of consecutive ids that share primary,
/// followers (in listed order) and epoch into ranges. A gap in the ids starts a new range.
std::vector<slice_range> collapse_slices(std::vector<slice_assignment> slices);

/// Formats a JSON number for people: integral values within 2^53 without a fraction,
/// others in the shortest form that round-trips.
std::string format_number(double value);

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
std::string format_unix_ms(std::int64_t ms);

/// Human-readable text for the body of `GET /v1/nodes`.
result<std::string> render_nodes(std::string_view body);

/// Human-readable text for the body of `GET /v1/directory`: a summary line, the slice
/// ranges and the slice counts per node.
result<std::string> render_directory(std::string_view body);

/// Human-readable text for the body of `GET /v1/where`.
result<std::string> render_where(std::string_view body);

/// Human-readable text for the body of `GET /v1/series`, found or not.
result<std::string> render_series(std::string_view body);

/// The one-line message for an HTTP error response: `CODE: message` for the API's
/// `{"error","message"}` bodies, otherwise the status and the start of the body.
std::string render_error(unsigned status, std::string_view body);

} // namespace tether::tools::ctl
