#include "watch_render.hpp"

#include "tetherctl/render.hpp"
#include "tetherctl/text_table.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>

namespace json = boost::json;

namespace tether::tools::ctl {

namespace {

/// The member named `camel` (the node's spelling) or `snake` (the schema's), or null.
const json::value* field(const json::object& obj, std::string_view camel,
                         std::string_view snake = {}) {
  if (auto* v = obj.if_contains(camel))
    return v;
  if (!snake.empty())
    return obj.if_contains(snake);
  return nullptr;
}

/// A proto3-JSON integer: a number or a decimal string. Absent, null or malformed is 0.
std::int64_t to_int(const json::value* v) {
  if (v == nullptr)
    return 0;
  if (v->is_int64())
    return v->get_int64();
  if (v->is_uint64())
    return static_cast<std::int64_t>(v->get_uint64());
  if (v->is_double())
    return static_cast<std::int64_t>(v->get_double());
  if (v->is_string()) {
    auto text = v->get_string();
    std::int64_t out = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    if (ec == std::errc{} && end == text.data() + text.size())
      return out;
  }
  return 0;
}

/// A proto3-JSON number (or `"NaN"`-style string) for people; absent is `0`.
std::string number_text(const json::value* v) {
  if (v == nullptr || v->is_null())
    return "0";
  if (v->is_string())
    return std::string{v->get_string()};
  if (v->is_double())
    return format_number(v->get_double());
  if (v->is_int64())
    return std::to_string(v->get_int64());
  if (v->is_uint64())
    return std::to_string(v->get_uint64());
  return json::serialize(*v);
}

std::string string_of(const json::value* v) {
  if (v == nullptr || !v->is_string())
    return {};
  return std::string{v->get_string()};
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return text;
}

} // namespace

result<stream_frame> parse_stream_frame(std::string_view text) {
  boost::system::error_code ec;
  auto doc = json::parse(text, ec);
  if (ec || !doc.is_object())
    return fail("undecodable frame from the node");
  auto& root = doc.get_object();
  if (root.size() != 1 || !root.begin()->value().is_object())
    return fail("unexpected frame from the node: " + std::string{text.substr(0, 200)});
  stream_frame out;
  auto name = std::string_view{root.begin()->key()};
  if (name == "welcome")
    out.kind = stream_frame::type::welcome;
  else if (name == "windowUpdate" || name == "window_update")
    out.kind = stream_frame::type::window_update;
  else if (name == "error")
    out.kind = stream_frame::type::error;
  else if (name == "pong")
    out.kind = stream_frame::type::pong;
  out.body = std::move(root.begin()->value().get_object());
  return out;
}

std::string make_hello_json(const std::string& producer_id, const std::string& token) {
  json::object hello{{"producerId", producer_id}, {"protocolVersion", 1}};
  if (!token.empty())
    hello["token"] = token;
  return json::serialize(json::object{{"hello", std::move(hello)}});
}

std::string make_subscribe_json(std::uint64_t request_id, const std::vector<std::string>& keys) {
  json::array key_array;
  for (const auto& key : keys)
    key_array.emplace_back(key);
  json::object subscribe{{"requestId", std::to_string(request_id)},
                         {"keys", std::move(key_array)}};
  return json::serialize(json::object{{"subscribe", std::move(subscribe)}});
}

std::string make_ping_json(std::uint64_t nonce) {
  return json::serialize(json::object{{"ping", {{"nonce", std::to_string(nonce)}}}});
}

std::string render_stream_error(const json::object& error) {
  auto code = string_of(field(error, "code"));
  auto* code_value = field(error, "code");
  if (code.empty() && code_value != nullptr)
    code = number_text(code_value);
  if (code.empty())
    code = "ERROR";
  std::string out = code;
  auto message = string_of(field(error, "message"));
  if (!message.empty())
    out += ": " + message;
  auto* retryable = field(error, "retryable");
  if (retryable != nullptr && retryable->is_bool() && retryable->get_bool())
    out += " (retryable)";
  return out;
}

std::uint64_t request_id_of(const json::object& body) {
  return static_cast<std::uint64_t>(to_int(field(body, "requestId", "request_id")));
}

bool is_initial_update(const json::object& update) {
  return to_int(field(update, "windowStartMs", "window_start_ms")) == 0;
}

result<std::string> render_window_update(const json::object& update) {
  auto start = to_int(field(update, "windowStartMs", "window_start_ms"));
  auto end = to_int(field(update, "windowEndMs", "window_end_ms"));
  const json::array* series = nullptr;
  if (auto* v = field(update, "series"); v != nullptr && !v->is_null()) {
    if (!v->is_array())
      return fail("unexpected window update: 'series' is not an array");
    series = &v->get_array();
  }
  auto n = series == nullptr ? 0 : series->size();
  auto count_text = std::to_string(n) + " series";
  std::string out;
  if (start == 0)
    out = "current state at " + format_unix_ms(end) + ": " + count_text + "\n";
  else
    out = "window " + format_unix_ms(start) + " .. " + format_unix_ms(end) + ": "
          + (n == 0 ? std::string{"no series changed"} : count_text + " changed") + "\n";
  if (n == 0)
    return out;
  using align = text_table::align;
  if (start != 0) {
    // A window closed: show its aggregate (docs/protocol.md, WindowAggregate).
    text_table table{{"KEY", "KIND", "COUNT", "TOTAL", "INCREASE", "RATE/S", "LAST", "MIN",
                      "MAX", "MEAN", "QUANTILES"},
                     {align::left, align::left, align::right, align::right, align::right,
                      align::right, align::right, align::right, align::right, align::right,
                      align::left}};
    for (const auto& entry : *series) {
      if (!entry.is_object())
        return fail("unexpected window update: a series entry is not an object");
      const auto& s = entry.get_object();
      auto kind = lower(string_of(field(s, "kind")));
      bool counter = kind == "counter";
      bool histogram = kind == "histogram";
      static const json::object none;
      const auto* wv = field(s, "window");
      const auto& w = wv != nullptr && wv->is_object() ? wv->get_object() : none;
      auto show = [&](std::string_view camel, bool defined) {
        return defined ? number_text(field(w, camel)) : std::string{"-"};
      };
      std::string quantiles = "-";
      if (const auto* qs = field(w, "quantiles"); qs != nullptr && qs->is_array()
                                                   && !qs->get_array().empty()) {
        quantiles.clear();
        for (const auto& q : qs->get_array()) {
          if (!q.is_object())
            continue;
          if (!quantiles.empty())
            quantiles += ' ';
          quantiles += "p" + number_text(field(q.get_object(), "q")) + "="
                       + number_text(field(q.get_object(), "value"));
        }
      }
      table.add_row({string_of(field(s, "key")), kind.empty() ? "-" : kind,
                     show("count", true), show("total", counter),
                     show("increase", counter), show("rate", counter),
                     show("last", !counter && !histogram), show("min", !counter),
                     show("max", !counter), show("mean", !counter),
                     histogram ? quantiles : std::string{"-"}});
    }
    return out + table.render();
  }
  text_table table{{"KEY", "KIND", "TOTAL", "LAST", "MIN", "MAX", "SUM", "COUNT", "UPDATED"},
                   {align::left, align::left, align::right, align::right, align::right,
                    align::right, align::right, align::right, align::left}};
  for (const auto& entry : *series) {
    if (!entry.is_object())
      return fail("unexpected window update: a series entry is not an object");
    const auto& s = entry.get_object();
    auto kind = lower(string_of(field(s, "kind")));
    bool counter = kind == "counter";
    bool known = counter || kind == "gauge" || kind == "histogram";
    // docs/protocol.md section 13: counters define total and last; gauges and histograms
    // define last, min, max, sum and count.
    auto show = [&](std::string_view camel, bool defined) {
      return defined || !known ? number_text(field(s, camel)) : std::string{"-"};
    };
    table.add_row({string_of(field(s, "key")), kind.empty() ? "-" : kind,
                   show("total", counter), show("last", true), show("min", !counter),
                   show("max", !counter), show("sum", !counter), show("count", !counter),
                   format_unix_ms(to_int(field(s, "updatedMs", "updated_ms")))});
  }
  return out + table.render();
}

} // namespace tether::tools::ctl
