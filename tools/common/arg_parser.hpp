#pragma once

#include "result.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace CLI {
class App;
}

namespace tether::tools {

/// Declares one long command-line option (`--name` or `--name=value`); CLI11 parses
/// the command line and renders the help from these declarations.
struct option_spec {
  /// Option name without the leading `--`; `help` declares `-h,--help`.
  std::string name;
  /// True when the option requires a value (`--name VALUE` or `--name=VALUE`).
  bool takes_value = false;
  /// Placeholder shown in the help text, e.g. `HOST:PORT`.
  std::string value_name;
  /// One-line description including the default and the bounds.
  std::string help;
};

/// The options given on a command line, as text: the tools check and convert the
/// values themselves (`parse_count`, `parse_duration`), with their own messages.
struct parsed_args {
  /// Every option given, in declaration order, with the value of its last occurrence;
  /// flags have an empty value.
  std::vector<std::pair<std::string, std::string>> options;

  /// True when the option occurred at least once.
  bool has(std::string_view name) const;

  /// The value of the last occurrence of the option, if any.
  std::optional<std::string> get(std::string_view name) const;
};

/// Declares `specs` on `app` as long options: options with a value take exactly one
/// (the last occurrence wins), flags take none; `help` becomes CLI11's `-h,--help`.
void add_options(CLI::App& app, const std::vector<option_spec>& specs);

/// Parses `args` (without the program name) with `app`, which `add_options` prepared
/// with `specs`; options and positional arguments may be interleaved and `--` ends
/// the options. Returns the options of `specs` given (`help` when `-h` or `--help`
/// was), or CLI11's message for a usage error.
result<parsed_args> parse_args(CLI::App& app, const std::vector<std::string_view>& args,
                               const std::vector<option_spec>& specs);

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
