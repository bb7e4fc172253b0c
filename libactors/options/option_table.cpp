#include "tether/option_table.hpp"

#include <algorithm>
#include <cstdio>

#include <caf/actor_system_config.hpp>
#include <caf/config_option_adder.hpp>
#include <caf/settings.hpp>

namespace tether {

namespace {

/// Reaches the protected option set of any config through a member pointer formed
/// in a derived class (the one legal way in without subclassing the user's config).
struct option_access : caf::actor_system_config {
  static caf::config_option_set& of(caf::actor_system_config& cfg) {
    return cfg.*(&option_access::custom_options_);
  }
};

template <class... Ts>
struct overload : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
overload(Ts...) -> overload<Ts...>;

std::string real_text(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", x);
  return buf;
}

std::string full_name(std::string_view prefix, std::string_view name) {
  std::string out{prefix};
  out += '.';
  out += name;
  return out;
}

/// "1, 3 or 5".
std::string list_text(const std::vector<uint64_t>& xs) {
  std::string out;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (i > 0)
      out += i + 1 == xs.size() ? " or " : ", ";
    out += std::to_string(xs[i]);
  }
  return out;
}

/// "(32 MiB)" for byte counts, "(2^48)" for large powers of two; else empty.
std::string size_note(std::string_view name, uint64_t v) {
  if (v >= (uint64_t{1} << 32) && (v & (v - 1)) == 0)
    return " (2^" + std::to_string(63 - __builtin_clzll(v)) + ")";
  constexpr uint64_t mib = 1 << 20;
  auto bytes = name.size() > 6 && name.substr(name.size() - 6) == "-bytes";
  if (bytes && v >= mib && v % mib == 0)
    return " (" + std::to_string(v / mib) + " MiB)";
  return {};
}

/// The default as the docs show it: `code` for values, words for empty ones.
std::string default_markdown(const option& opt) {
  if (!opt.default_text.empty())
    return std::string{opt.default_text};
  auto code = [](const std::string& x) { return "`" + x + "`"; };
  return std::visit(
    overload{
      [&](bool* x) { return code(*x ? "true" : "false"); },
      [&](double* x) { return code(real_text(*x)); },
      [&](std::string* x) { return x->empty() ? std::string{"empty"} : code(*x); },
      [&](std::vector<std::string>* xs) {
        std::string out = "[";
        for (size_t i = 0; i < xs->size(); ++i)
          out += (i > 0 ? ", \"" : "\"") + (*xs)[i] + "\"";
        return code(out + "]");
      },
      [&](auto* x) {
        auto v = static_cast<uint64_t>(*x);
        return code(std::to_string(v)) + size_note(opt.name, v);
      },
    },
    opt.field);
}

/// The bounds as the docs show them; "–" for any value of the type.
std::string bounds_markdown(const option& opt) {
  auto& b = opt.bounds;
  auto range = [&](const char* unit) -> std::string {
    if (!b.one_of.empty())
      return list_text(b.one_of) + unit;
    if (b.max == std::numeric_limits<uint64_t>::max())
      return b.min == 0 ? std::string{"–"} : "≥ " + std::to_string(b.min) + unit;
    return std::to_string(b.min) + " to " + std::to_string(b.max) + unit;
  };
  return std::visit(
    overload{
      [&](bool*) { return std::string{"`true` or `false`"}; },
      [&](double*) {
        if (b.real_min == std::numeric_limits<double>::lowest())
          return std::string{"–"};
        return real_text(b.real_min) + " to " + real_text(b.real_max);
      },
      [&](std::string*) { return range(" bytes"); },
      [&](std::vector<std::string>*) { return range(" entries"); },
      [&](auto*) { return range(""); },
    },
    opt.field);
}

/// The `--help` line: the description, the default and the bounds, without Markdown.
std::string help_text(const option& opt) {
  std::string out{opt.description};
  out += " (default ";
  out += default_markdown(opt);
  if (auto bounds = bounds_markdown(opt); bounds != "–")
    out += "; " + bounds;
  out += ')';
  out.erase(std::remove(out.begin(), out.end(), '`'), out.end());
  return out;
}

/// The option's type as `--help` names it.
std::string_view type_name(const option_field& field) {
  static constexpr std::string_view names[] = {"a boolean", "an integer in [0, 65535]",
                                               "an integer in [0, 2^32)",
                                               "an integer in [0, 2^64)", "a number",
                                               "a string", "a list of strings"};
  return names[field.index()];
}

/// Checks one integer against its bounds; empty when it holds.
std::string check_integer(const std::string& name, uint64_t v, const option_bounds& b) {
  if (v < b.min || v > b.max)
    return name + " = " + std::to_string(v) + " is out of bounds [" + std::to_string(b.min)
           + ", " + std::to_string(b.max) + "]";
  if (!b.one_of.empty()
      && std::find(b.one_of.begin(), b.one_of.end(), v) == b.one_of.end())
    return name + " = " + std::to_string(v) + " is not " + list_text(b.one_of);
  return {};
}

/// Checks a size (of a string or list) against its bounds; empty when it holds.
std::string check_size(const std::string& name, uint64_t n, const option_bounds& b,
                       const char* unit) {
  bool in_range = n >= b.min && n <= b.max;
  bool listed = b.one_of.empty()
                || std::find(b.one_of.begin(), b.one_of.end(), n) != b.one_of.end();
  if (in_range && listed)
    return {};
  auto allowed = !b.one_of.empty() ? list_text(b.one_of)
                                   : std::to_string(b.min) + " to " + std::to_string(b.max);
  return name + " has " + std::to_string(n) + " " + unit + ", not " + allowed;
}

} // namespace

option_bounds in(uint64_t lo, uint64_t hi) {
  option_bounds b;
  b.min = lo;
  b.max = hi;
  return b;
}

option_bounds in_real(double lo, double hi) {
  option_bounds b;
  b.real_min = lo;
  b.real_max = hi;
  return b;
}

option_bounds one_of(std::initializer_list<uint64_t> values) {
  option_bounds b;
  b.one_of = values;
  return b;
}

void declare_options(caf::actor_system_config& cfg, std::string_view prefix,
                     const option_table& table) {
  caf::config_option_adder add{option_access::of(cfg), prefix};
  for (auto& opt : table) {
    auto help = help_text(opt);
    std::visit([&](auto* field) {
      using type = std::decay_t<decltype(*field)>;
      add.add<type>(opt.name, help);
    }, opt.field);
  }
}

std::string read_options(const caf::actor_system_config& cfg, std::string_view prefix,
                         const option_table& table) {
  auto& settings = caf::content(cfg);
  for (auto& opt : table) {
    auto key = full_name(prefix, opt.name);
    auto given = caf::get_if(&settings, key);
    if (given == nullptr)
      continue;
    bool ok = std::visit(
      [&](auto* field) {
        using type = std::decay_t<decltype(*field)>;
        auto value = caf::get_if<type>(&settings, key);
        if (!value)
          return false;
        *field = *value;
        return true;
      },
      opt.field);
    if (!ok)
      return key + " = " + to_string(*given) + " is not " + std::string{type_name(opt.field)};
  }
  return {};
}

std::string check_options(std::string_view prefix, const option_table& table) {
  for (auto& opt : table) {
    auto name = full_name(prefix, opt.name);
    auto& b = opt.bounds;
    auto err = std::visit(
      overload{
        [&](bool*) { return std::string{}; },
        [&](double* x) {
          if (*x >= b.real_min && *x <= b.real_max) // false for NaN
            return std::string{};
          return name + " = " + real_text(*x) + " is out of bounds ["
                 + real_text(b.real_min) + ", " + real_text(b.real_max) + "]";
        },
        [&](std::string* x) { return check_size(name, x->size(), b, "bytes"); },
        [&](std::vector<std::string>* x) {
          return check_size(name, x->size(), b, "entries");
        },
        [&](auto* x) { return check_integer(name, static_cast<uint64_t>(*x), b); },
      },
      opt.field);
    if (!err.empty())
      return err;
  }
  return {};
}

std::string options_markdown(std::string_view prefix,
                             const std::vector<option_table>& tables) {
  std::string out = "| option | default | bounds | meaning |\n"
                    "| --- | --- | --- | --- |\n";
  for (auto& table : tables)
    for (auto& opt : table)
      out += "| `" + full_name(prefix, opt.name) + "` | " + default_markdown(opt) + " | "
             + bounds_markdown(opt) + " | " + std::string{opt.description} + " |\n";
  return out;
}

} // namespace tether
