#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace caf {
class actor_system_config;
}

namespace tether {

/// The struct field an option is read into; the alternative fixes the option's type.
using option_field = std::variant<bool*, uint16_t*, uint32_t*, uint64_t*, double*,
                                  std::string*, std::vector<std::string>*>;

/// What values an option takes. For integers the bounds hold the value, for strings
/// its length in bytes, for lists their number of elements; for doubles `real_min`
/// and `real_max` hold the value. `one_of`, when not empty, lists the only allowed
/// values (integers) or element counts (lists) within those bounds.
struct option_bounds {
  uint64_t min = 0;
  uint64_t max = std::numeric_limits<uint64_t>::max();
  double real_min = std::numeric_limits<double>::lowest();
  double real_max = std::numeric_limits<double>::max();
  std::vector<uint64_t> one_of;
};

/// Integers in [lo, hi], string lengths or list sizes in [lo, hi].
option_bounds in(uint64_t lo, uint64_t hi = std::numeric_limits<uint64_t>::max());

/// Doubles in [lo, hi].
option_bounds in_real(double lo, double hi);

/// Exactly one of `values` (integers) or of these element counts (lists).
option_bounds one_of(std::initializer_list<uint64_t> values);

/// One configuration option, declared once: its row drives CAF's config (`--help`,
/// command line, config file), reading into the options struct, validation and the
/// options table of docs/operations.md.
struct option {
  /// The name below the component's prefix, e.g. `slice-count` for
  /// `tether.slice-count`.
  std::string_view name;
  /// The field of the options struct the value goes to. Its value when the table is
  /// made from a default-constructed struct is the documented default.
  option_field field;
  /// What the option does, in the operator's words (Markdown, one line).
  std::string_view description;
  /// The values it takes; default: any value of its type.
  option_bounds bounds = {};
  /// Replaces the rendered default in the docs and `--help`, for defaults that an
  /// empty value stands for (e.g. "`host`"); empty: the field's value.
  std::string_view default_text = {};
};

/// The options of one component, in the order the docs list them. A table is made
/// by a function such as `node_option_table(node_options&)`, whose fields point into
/// the struct it was given.
using option_table = std::vector<option>;

/// Declares every option of `table` under `prefix` (e.g. "tether") in `cfg`, with the
/// table's values as the defaults shown by `--help`. Call before `cfg.parse`.
void declare_options(caf::actor_system_config& cfg, std::string_view prefix,
                     const option_table& table);

/// Copies every option of `table` that `cfg` has (command line or config file) into
/// its field; absent options keep their field's value. Returns an empty string, or a
/// message naming an option whose value does not have the option's type.
std::string read_options(const caf::actor_system_config& cfg, std::string_view prefix,
                         const option_table& table);

/// Checks every field of `table` against its bounds. Returns an empty string when all
/// hold, else a message naming the first option out of bounds and the bounds, e.g.
/// "tether.slice-count = 0 is out of bounds [1, 65536]".
std::string check_options(std::string_view prefix, const option_table& table);

/// The options of `tables` as a Markdown table (option, default, bounds, meaning), as
/// docs/operations.md lists them; the tables must hold defaults.
std::string options_markdown(std::string_view prefix,
                             const std::vector<option_table>& tables);

} // namespace tether
