#include "render.hpp"

#include "tetherctl/text_table.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <stdexcept>

namespace json = boost::json;

namespace tether::tools::ctl {

namespace {

/// Thrown inside this file when a response does not have the documented shape; turned
/// into a failure at each render entry point.
struct shape_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

json::value parse_body(std::string_view body) {
  boost::system::error_code ec;
  auto value = json::parse(body, ec);
  if (ec)
    throw shape_error{"response is not valid JSON (" + ec.message() + ")"};
  return value;
}

const json::object& as_object(const json::value& value, std::string_view what) {
  if (!value.is_object())
    throw shape_error{std::string{what} + " is not a JSON object"};
  return value.get_object();
}

const json::value& member(const json::object& obj, std::string_view key) {
  auto i = obj.find(key);
  if (i == obj.end())
    throw shape_error{"missing field '" + std::string{key} + "'"};
  return i->value();
}

std::string get_string(const json::object& obj, std::string_view key) {
  const auto& v = member(obj, key);
  if (!v.is_string())
    throw shape_error{"field '" + std::string{key} + "' is not a string"};
  return std::string{v.get_string()};
}

/// A string field that may also be null or absent (then empty).
std::string get_optional_string(const json::object& obj, std::string_view key) {
  auto i = obj.find(key);
  if (i == obj.end() || i->value().is_null())
    return {};
  if (!i->value().is_string())
    throw shape_error{"field '" + std::string{key} + "' is not a string"};
  return std::string{i->value().get_string()};
}

std::uint64_t to_uint(const json::value& v, std::string_view key) {
  if (v.is_uint64())
    return v.get_uint64();
  if (v.is_int64() && v.get_int64() >= 0)
    return static_cast<std::uint64_t>(v.get_int64());
  if (v.is_double() && v.get_double() >= 0 && v.get_double() < 1.8e19
      && std::floor(v.get_double()) == v.get_double())
    return static_cast<std::uint64_t>(v.get_double());
  throw shape_error{"field '" + std::string{key} + "' is not a non-negative integer"};
}

std::uint64_t get_uint(const json::object& obj, std::string_view key) {
  return to_uint(member(obj, key), key);
}

/// A count that may be null (a node the answering node cannot reach): "-" then.
std::string uint_or_dash(const json::object& obj, std::string_view key) {
  const auto& v = member(obj, key);
  if (v.is_null())
    return "-";
  return std::to_string(to_uint(v, key));
}

bool get_bool(const json::object& obj, std::string_view key) {
  const auto& v = member(obj, key);
  if (!v.is_bool())
    throw shape_error{"field '" + std::string{key} + "' is not a boolean"};
  return v.get_bool();
}

std::vector<std::string> get_string_array(const json::object& obj, std::string_view key) {
  auto i = obj.find(key);
  if (i == obj.end() || i->value().is_null())
    return {};
  if (!i->value().is_array())
    throw shape_error{"field '" + std::string{key} + "' is not an array"};
  std::vector<std::string> out;
  for (const auto& element : i->value().get_array()) {
    if (!element.is_string())
      throw shape_error{"field '" + std::string{key} + "' holds a non-string"};
    out.emplace_back(element.get_string());
  }
  return out;
}

const json::array& get_array(const json::object& obj, std::string_view key) {
  const auto& v = member(obj, key);
  if (!v.is_array())
    throw shape_error{"field '" + std::string{key} + "' is not an array"};
  return v.get_array();
}

/// Any scalar JSON value in human-readable form.
std::string format_scalar(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "-";
    case json::kind::bool_:
      return v.get_bool() ? "true" : "false";
    case json::kind::int64:
      return std::to_string(v.get_int64());
    case json::kind::uint64:
      return std::to_string(v.get_uint64());
    case json::kind::double_:
      return format_number(v.get_double());
    case json::kind::string:
      return std::string{v.get_string()};
    default:
      return json::serialize(v);
  }
}

std::string join_or_dash(const std::vector<std::string>& names) {
  if (names.empty())
    return "-";
  std::string out;
  for (const auto& name : names) {
    if (!out.empty())
      out += ',';
    out += name;
  }
  return out;
}

std::string or_dash(std::string text) {
  return text.empty() ? std::string{"-"} : text;
}

/// Runs `fn` and maps a shape error to a failure naming the endpoint.
template <class F>
result<std::string> guarded(std::string_view endpoint, F fn) {
  try {
    return fn();
  } catch (const shape_error& e) {
    return fail("unexpected response from " + std::string{endpoint} + ": " + e.what());
  }
}

using table_align = text_table::align;

/// Lower-case ASCII copy of `text`.
std::string lower(std::string_view text) {
  std::string out{text};
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return out;
}

/// The `SeriesState` fields defined for the state's kind; all of them for an unknown kind.
std::vector<std::string_view> fields_for_kind(const json::object& state) {
  auto i = state.find("kind");
  auto kind = i != state.end() && i->value().is_string() ? lower(i->value().get_string())
                                                         : std::string{};
  if (kind == "counter")
    return {"kind", "total", "last", "updated_ms"};
  if (kind == "gauge")
    return {"kind", "last", "min", "max", "sum", "count", "updated_ms"};
  if (kind == "histogram")
    return {"kind", "count", "sum", "min", "max", "last", "updated_ms"};
  return {"kind", "total", "last", "min", "max", "sum", "count", "updated_ms"};
}

} // namespace

std::vector<slice_range> collapse_slices(std::vector<slice_assignment> slices) {
  std::stable_sort(slices.begin(), slices.end(),
                   [](const auto& x, const auto& y) { return x.slice < y.slice; });
  std::vector<slice_range> out;
  for (auto& s : slices) {
    if (!out.empty()) {
      auto& back = out.back();
      if (back.last + 1 == s.slice && back.epoch == s.epoch && back.primary == s.primary
          && back.followers == s.followers) {
        back.last = s.slice;
        continue;
      }
    }
    out.push_back(slice_range{s.slice, s.slice, s.epoch, std::move(s.primary),
                              std::move(s.followers)});
  }
  return out;
}

std::string format_number(double value) {
  if (std::isnan(value))
    return "NaN";
  if (std::isinf(value))
    return value > 0 ? "+Inf" : "-Inf";
  if (std::floor(value) == value && std::abs(value) <= 9007199254740992.0) {
    auto as_int = static_cast<std::int64_t>(value);
    return std::to_string(as_int);
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  if (ec != std::errc{})
    return "?";
  return std::string{buf, end};
}

std::string format_unix_ms(std::int64_t ms) {
  auto secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  auto millis = static_cast<int>(ms - static_cast<std::int64_t>(secs) * 1000);
  std::tm tm{};
  if (gmtime_r(&secs, &tm) == nullptr)
    return std::to_string(ms);
  char buf[64];
  auto n = std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                         tm.tm_min, tm.tm_sec, millis);
  return std::string{buf, static_cast<size_t>(std::max(n, 0))};
}

result<std::string> render_nodes(std::string_view body) {
  return guarded("/v1/nodes", [&] {
    auto doc = parse_body(body);
    const auto& root = as_object(doc, "response");
    text_table table{{"NAME", "ADDRESS", "STATE", "PRIMARIES", "FOLLOWING", "SERIES",
                      "SAMPLES"},
                     {table_align::left, table_align::left, table_align::left,
                      table_align::right, table_align::right, table_align::right,
                      table_align::right}};
    size_t up = 0;
    size_t total = 0;
    for (const auto& entry : get_array(root, "nodes")) {
      const auto& node = as_object(entry, "node entry");
      auto state = get_string(node, "state");
      ++total;
      if (state == "up")
        ++up;
      table.add_row({get_string(node, "name"), or_dash(get_optional_string(node, "address")),
                     state, std::to_string(get_uint(node, "primary_slices")),
                     std::to_string(get_uint(node, "follower_slices")),
                     uint_or_dash(node, "series"), uint_or_dash(node, "samples_applied")});
    }
    std::string out = table.render();
    out += std::to_string(total) + (total == 1 ? " node, " : " nodes, ") + std::to_string(up)
           + " up\n";
    return out;
  });
}

result<std::string> render_directory(std::string_view body) {
  return guarded("/v1/directory", [&] {
    auto doc = parse_body(body);
    const auto& root = as_object(doc, "response");
    auto version = get_uint(root, "version");
    auto slice_count = get_uint(root, "slice_count");
    auto rf = get_uint(root, "replication_factor");
    auto nodes = get_string_array(root, "nodes");
    std::vector<slice_assignment> slices;
    for (const auto& entry : get_array(root, "slices")) {
      const auto& s = as_object(entry, "slice entry");
      slices.push_back(slice_assignment{get_uint(s, "slice"), get_uint(s, "epoch"),
                                        get_optional_string(s, "primary"),
                                        get_string_array(s, "followers")});
    }
    // Per-node counts, in the directory's node order, then any other node named by a slice.
    std::vector<std::string> order = nodes;
    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> counts;
    for (const auto& name : nodes)
      counts[name];
    size_t orphaned = 0;
    auto note_node = [&](const std::string& name) -> std::pair<std::uint64_t, std::uint64_t>& {
      auto [i, added] = counts.try_emplace(name);
      if (added)
        order.push_back(name);
      return i->second;
    };
    for (const auto& s : slices) {
      if (s.primary.empty())
        ++orphaned;
      else
        ++note_node(s.primary).first;
      for (const auto& f : s.followers)
        ++note_node(f).second;
    }
    auto listed = slices.size();
    auto ranges = collapse_slices(std::move(slices));
    std::string out = "directory version " + std::to_string(version) + ": "
                      + std::to_string(slice_count) + " slices, replication factor "
                      + std::to_string(rf) + ", " + std::to_string(nodes.size())
                      + (nodes.size() == 1 ? " node\n" : " nodes\n");
    if (listed != slice_count)
      out += "warning: " + std::to_string(listed) + " of " + std::to_string(slice_count)
             + " slices listed\n";
    if (orphaned > 0)
      out += "warning: " + std::to_string(orphaned)
             + (orphaned == 1 ? " slice has" : " slices have") + " no primary\n";
    out += '\n';
    text_table range_table;
    for (const auto& r : ranges) {
      auto span = r.first == r.last ? std::to_string(r.first)
                                    : std::to_string(r.first) + "-" + std::to_string(r.last);
      range_table.add_row({std::move(span), or_dash(r.primary),
                           "epoch " + std::to_string(r.epoch),
                           "followers " + join_or_dash(r.followers)});
    }
    out += range_table.render();
    out += '\n';
    text_table node_table{{"NODE", "PRIMARIES", "FOLLOWING"},
                          {table_align::left, table_align::right, table_align::right}};
    for (const auto& name : order) {
      const auto& c = counts[name];
      node_table.add_row({name, std::to_string(c.first), std::to_string(c.second)});
    }
    out += node_table.render();
    return out;
  });
}

result<std::string> render_where(std::string_view body) {
  return guarded("/v1/where", [&] {
    auto doc = parse_body(body);
    const auto& root = as_object(doc, "response");
    text_table table;
    table.add_row({"key", get_string(root, "key")});
    table.add_row({"slice", std::to_string(get_uint(root, "slice"))});
    table.add_row({"epoch", std::to_string(get_uint(root, "epoch"))});
    table.add_row({"primary", or_dash(get_optional_string(root, "primary"))});
    table.add_row({"followers", join_or_dash(get_string_array(root, "followers"))});
    return table.render();
  });
}

result<std::string> render_series(std::string_view body) {
  return guarded("/v1/series", [&] {
    auto doc = parse_body(body);
    const auto& root = as_object(doc, "response");
    auto key = get_string(root, "key");
    auto slice = get_uint(root, "slice");
    auto node = or_dash(get_optional_string(root, "node"));
    auto epoch = get_uint(root, "epoch");
    auto where = "slice " + std::to_string(slice) + " on " + node + ", epoch "
                 + std::to_string(epoch);
    if (!get_bool(root, "found"))
      return "series " + key + " not found (" + where + ")\n";
    const auto& state = as_object(member(root, "state"), "field 'state'");
    text_table table;
    table.add_row({"key", key});
    table.add_row({"where", where});
    // Documented fields in a fixed order, restricted to those the protocol defines for the
    // series' kind (docs/protocol.md section 13: the others are unspecified), then any
    // field this version does not know.
    static constexpr std::string_view known[] = {"kind", "total", "last",  "min",
                                                 "max",  "sum",   "count", "updated_ms"};
    auto shown = fields_for_kind(state);
    for (auto name : known) {
      auto i = state.find(name);
      if (i == state.end() || std::find(shown.begin(), shown.end(), name) == shown.end())
        continue;
      if (name == "updated_ms" && (i->value().is_int64() || i->value().is_uint64())) {
        auto ms = i->value().is_int64() ? i->value().get_int64()
                                        : static_cast<std::int64_t>(i->value().get_uint64());
        table.add_row({"updated", format_unix_ms(ms) + " (" + std::to_string(ms) + ")"});
        continue;
      }
      table.add_row({std::string{name}, format_scalar(i->value())});
    }
    for (const auto& kv : state) {
      auto name = std::string_view{kv.key()};
      if (std::find(std::begin(known), std::end(known), name) == std::end(known))
        table.add_row({std::string{name}, format_scalar(kv.value())});
    }
    return table.render();
  });
}

std::string render_error(unsigned status, std::string_view body) {
  boost::system::error_code ec;
  auto doc = json::parse(body, ec);
  if (!ec && doc.is_object()) {
    const auto& obj = doc.get_object();
    auto code = obj.find("error");
    auto message = obj.find("message");
    std::string out;
    if (code != obj.end() && code->value().is_string())
      out = std::string{code->value().get_string()};
    if (message != obj.end() && message->value().is_string()) {
      if (!out.empty())
        out += ": ";
      out += std::string{message->value().get_string()};
    }
    if (!out.empty())
      return out + " (HTTP " + std::to_string(status) + ")";
  }
  // Not the API's error shape: show the start of the body, on one line.
  constexpr size_t max_excerpt = 200;
  std::string excerpt{body.substr(0, max_excerpt)};
  std::replace(excerpt.begin(), excerpt.end(), '\n', ' ');
  std::replace(excerpt.begin(), excerpt.end(), '\r', ' ');
  while (!excerpt.empty() && excerpt.back() == ' ')
    excerpt.pop_back();
  if (body.size() > max_excerpt)
    excerpt += "...";
  return "HTTP " + std::to_string(status) + (excerpt.empty() ? "" : ": " + excerpt);
}

} // namespace tether::tools::ctl
