#include "arg_parser.hpp"

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

result<parsed_args> parse_args(const std::vector<std::string_view>& args,
                               const std::vector<option_spec>& specs) {
  auto find_spec = [&](std::string_view name) -> const option_spec* {
    for (const auto& spec : specs)
      if (spec.name == name)
        return &spec;
    return nullptr;
  };
  parsed_args out;
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    auto arg = args[i];
    if (options_done || arg.size() < 2 || arg.front() != '-') {
      out.positional.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "-h" && find_spec("help") != nullptr) {
      out.options.emplace_back("help", "");
      continue;
    }
    if (arg.substr(0, 2) != "--")
      return fail("unknown option '" + std::string{arg} + "'");
    auto body = arg.substr(2);
    auto eq = body.find('=');
    auto name = body.substr(0, eq);
    const auto* spec = find_spec(name);
    if (spec == nullptr)
      return fail("unknown option '--" + std::string{name} + "'");
    if (!spec->takes_value) {
      if (eq != std::string_view::npos)
        return fail("option '--" + spec->name + "' takes no value");
      out.options.emplace_back(spec->name, "");
      continue;
    }
    if (eq != std::string_view::npos) {
      out.options.emplace_back(spec->name, std::string{body.substr(eq + 1)});
    } else if (i + 1 < args.size()) {
      out.options.emplace_back(spec->name, std::string{args[++i]});
    } else {
      return fail("option '--" + spec->name + "' requires a value ("
                  + (spec->value_name.empty() ? "VALUE" : spec->value_name) + ")");
    }
  }
  return out;
}

result<parsed_args> parse_args(int argc, const char* const* argv,
                               const std::vector<option_spec>& specs) {
  std::vector<std::string_view> args;
  for (int i = 1; i < argc; ++i)
    args.emplace_back(argv[i]);
  return parse_args(args, specs);
}

std::string format_option_help(const std::vector<option_spec>& specs) {
  std::vector<std::string> heads;
  size_t width = 0;
  for (const auto& spec : specs) {
    std::string head = "  --" + spec.name;
    if (spec.takes_value)
      head += " " + (spec.value_name.empty() ? std::string{"VALUE"} : spec.value_name);
    width = std::max(width, head.size());
    heads.push_back(std::move(head));
  }
  std::string out;
  for (size_t i = 0; i < specs.size(); ++i) {
    out += heads[i];
    out.append(width - heads[i].size() + 2, ' ');
    out += specs[i].help;
    out += '\n';
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
