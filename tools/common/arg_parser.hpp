#pragma once

#include "result.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether::tools {

/// Declares one long command-line option (`--name` or `--name=value`).
struct option_spec {
  /// Option name without the leading `--`.
  std::string name;
  /// True when the option requires a value (`--name VALUE` or `--name=VALUE`).
  bool takes_value = false;
  /// Placeholder shown in the help text, e.g. `HOST:PORT`.
  std::string value_name;
  /// One-line description including the default and the bounds.
  std::string help;
};

/// The outcome of `parse_args`: options in command-line order and positional arguments.
struct parsed_args {
  /// Every option occurrence in order; flags have an empty value.
  std::vector<std::pair<std::string, std::string>> options;
  /// Arguments that are not options, in order; everything after `--` lands here.
  std::vector<std::string> positional;

  /// True when the option occurred at least once.
  bool has(std::string_view name) const;

  /// The value of the last occurrence of the option, if any.
  std::optional<std::string> get(std::string_view name) const;
};

/// Parses `args` (without the program name) against `specs`. Options and positional
/// arguments may be interleaved; `--` ends option parsing; `-h` is an alias of `--help`
/// when `help` is declared. Unknown options, missing values and values given to flags are
/// failures whose message is suitable for a usage error.
result<parsed_args> parse_args(const std::vector<std::string_view>& args,
                               const std::vector<option_spec>& specs);

/// Convenience overload for `main`'s arguments; skips `argv[0]`.
result<parsed_args> parse_args(int argc, const char* const* argv,
                               const std::vector<option_spec>& specs);

/// Renders `specs` as an aligned option list for a usage message, one option a line.
std::string format_option_help(const std::vector<option_spec>& specs);

/// Parses a non-negative decimal integer with an optional decimal multiplier suffix
/// `k` (10^3), `M` (10^6) or `G` (10^9), and checks it against [min, max]. `what` names
/// the option in the failure message.
result<std::uint64_t> parse_count(std::string_view text, std::string_view what,
                                  std::uint64_t min, std::uint64_t max);

/// Parses a duration: a non-negative decimal number (fractions allowed) with an optional
/// unit `ms`, `s`, `m` or `h`; a bare number is in `bare_unit`. The result is rounded to
/// whole milliseconds and checked against [min, max].
result<std::chrono::milliseconds>
parse_duration(std::string_view text, std::string_view what, std::chrono::milliseconds min,
               std::chrono::milliseconds max,
               std::chrono::milliseconds bare_unit = std::chrono::seconds{1});

} // namespace tether::tools
