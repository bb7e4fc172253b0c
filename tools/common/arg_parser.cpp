#include "arg_parser.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace tether::tools {

bool parsed_args::has(std::string_view name) const {
  return std::any_of(options.begin(), options.end(),
                     [&](const auto& kv) { return kv.first == name; });
}

std::optional<std::string> parsed_args::get(std::string_view name) const {
  for (auto i = options.rbegin(); i != options.rend(); ++i)
    if (i->first == name)
      return i->second;
  return std::nullopt;
}

void add_options(CLI::App& app, const std::vector<option_spec>& specs) {
  for (const auto& spec : specs) {
    if (spec.name == "help") {
      app.set_help_flag("-h,--help", spec.help);
    } else if (spec.takes_value) {
      app.add_option("--" + spec.name, spec.help)
        ->type_name(spec.value_name.empty() ? "VALUE" : spec.value_name)
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    } else {
      app.add_flag("--" + spec.name, spec.help)->disable_flag_override();
    }
  }
}

result<parsed_args> parse_args(CLI::App& app, const std::vector<std::string_view>& args,
                               const std::vector<option_spec>& specs) {
  parsed_args out;
  // CLI11 takes the arguments last first. It reads `--name=` as `--name` and takes
  // the next argument as the value: pass the empty value as an argument of its own.
  std::vector<std::string> reversed;
  bool options_done = false;
  for (auto arg : args) {
    options_done = options_done || arg == "--";
    if (!options_done && arg.size() > 3 && arg.substr(0, 2) == "--" && arg.back() == '='
        && arg.find('=') == arg.size() - 1) {
      reversed.emplace_back(arg.substr(0, arg.size() - 1));
      reversed.emplace_back();
    } else {
      reversed.emplace_back(arg);
    }
  }
  std::reverse(reversed.begin(), reversed.end());
  try {
    app.parse(std::move(reversed));
  } catch (const CLI::CallForHelp&) {
    out.options.emplace_back("help", "");
    return out;
  } catch (const CLI::ParseError& e) {
    return fail(e.what());
  }
  for (const auto& spec : specs) {
    if (spec.name == "help")
      continue;
    const auto* opt = app.get_option_no_throw("--" + spec.name);
    if (opt == nullptr || opt->count() == 0)
      continue;
    out.options.emplace_back(spec.name, spec.takes_value ? opt->results().back() : "");
  }
  return out;
}

result<std::uint64_t> parse_count(std::string_view text, std::string_view what,
                                  std::uint64_t min, std::uint64_t max) {
  auto bad = [&](const std::string& why) {
    return fail("invalid value '" + std::string{text} + "' for --" + std::string{what} + ": "
                + why);
  };
  std::uint64_t multiplier = 1;
  auto digits = text;
  if (!digits.empty()) {
    switch (digits.back()) {
      case 'k':
      case 'K':
        multiplier = 1000;
        break;
      case 'M':
        multiplier = 1000 * 1000;
        break;
      case 'G':
        multiplier = 1000 * 1000 * 1000;
        break;
      default:
        break;
    }
    if (multiplier != 1)
      digits.remove_suffix(1);
  }
  if (digits.empty())
    return bad("expected a non-negative integer");
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec == std::errc::result_out_of_range)
    return bad("too large");
  if (ec != std::errc{} || end != digits.data() + digits.size())
    return bad("expected a non-negative integer");
  if (value > UINT64_MAX / multiplier)
    return bad("too large");
  value *= multiplier;
  if (value < min || value > max)
    return bad("must be in " + std::to_string(min) + ".." + std::to_string(max));
  return value;
}

result<std::chrono::milliseconds>
parse_duration(std::string_view text, std::string_view what, std::chrono::milliseconds min,
               std::chrono::milliseconds max, std::chrono::milliseconds bare_unit) {
  using std::chrono::milliseconds;
  auto bad = [&](const std::string& why) {
    return fail("invalid duration '" + std::string{text} + "' for --" + std::string{what}
                + ": " + why);
  };
  auto number = text;
  double unit_ms = static_cast<double>(bare_unit.count());
  auto strip = [&](std::string_view suffix, double ms) {
    if (number.size() > suffix.size()
        && number.substr(number.size() - suffix.size()) == suffix) {
      number.remove_suffix(suffix.size());
      unit_ms = ms;
      return true;
    }
    return false;
  };
  // Order matters: "ms" must be tried before "s" and "m".
  strip("ms", 1) || strip("s", 1000) || strip("m", 60'000) || strip("h", 3'600'000);
  if (number.empty() || number.front() == '-' || number.front() == '+')
    return bad("expected a non-negative number with an optional unit ms, s, m or h");
  double value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value,
                                   std::chars_format::fixed);
  if (ec != std::errc{} || end != number.data() + number.size() || !std::isfinite(value))
    return bad("expected a non-negative number with an optional unit ms, s, m or h");
  double total_ms = std::round(value * unit_ms);
  auto describe = [](milliseconds d) {
    if (d.count() % 1000 == 0)
      return std::to_string(d.count() / 1000) + "s";
    return std::to_string(d.count()) + "ms";
  };
  if (total_ms < static_cast<double>(min.count())
      || total_ms > static_cast<double>(max.count()))
    return bad("must be in " + describe(min) + ".." + describe(max));
  return milliseconds{static_cast<milliseconds::rep>(total_ms)};
}

} // namespace tether::tools
