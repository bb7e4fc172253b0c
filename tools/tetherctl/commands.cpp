#include "commands.hpp"

#include "tetherctl/render.hpp"
#include "tetherctl/text_table.hpp"
#include "tetherctl/url_encode.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cstdint>

namespace tether::tools::ctl {

namespace {

constexpr std::string_view prefix = "tetherctl: ";

bool is_success(unsigned status) {
  return status >= 200 && status < 300;
}

std::string with_newline(std::string text) {
  if (text.empty() || text.back() != '\n')
    text += '\n';
  return text;
}

std::string trim(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.remove_suffix(1);
  return std::string{text};
}

command_output unreachable(const ctl_options& opts, const std::string& why) {
  return {exit_unreachable, "",
          std::string{prefix} + "cannot reach " + opts.server.to_string() + ": " + why + "\n"};
}

command_output run_health(const ctl_options& opts, const http_fetch& fetch) {
  struct probe {
    std::string_view name;
    http_response response;
  };
  probe probes[] = {{"healthz", {}}, {"readyz", {}}};
  for (auto& p : probes) {
    auto response = fetch({http_method::get, "/" + std::string{p.name}, opts.timeout});
    if (!response)
      return unreachable(opts, response.error());
    p.response = std::move(*response);
  }
  bool all_ok = true;
  for (const auto& p : probes)
    all_ok = all_ok && is_success(p.response.status);
  command_output result;
  result.exit_code = all_ok ? exit_ok : exit_server_error;
  if (opts.json) {
    boost::json::object obj;
    for (const auto& p : probes)
      obj[p.name] = {{"status", p.response.status}, {"body", trim(p.response.body)}};
    result.out = boost::json::serialize(obj) + "\n";
  } else {
    text_table table;
    for (const auto& p : probes)
      table.add_row({std::string{p.name}, std::to_string(p.response.status),
                     trim(p.response.body)});
    result.out = table.render();
  }
  if (!all_ok)
    result.err = std::string{prefix} + "node " + opts.server.to_string()
                 + " is not healthy and ready\n";
  return result;
}

bool is_admin(const std::string& command) {
  return command == "drain" || command == "move" || command == "rebalance";
}

std::string plural(std::uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string{n == 1 ? one : many};
}

/// Reads the non-negative integer member `name` of the JSON object in `body`.
result<std::uint64_t> read_count(std::string_view body, std::string_view name,
                                 std::string_view endpoint) {
  auto unexpected = [&] {
    return fail("unexpected response from " + std::string{endpoint} + ": expected {\""
                + std::string{name} + "\": N}");
  };
  boost::system::error_code ec;
  auto doc = boost::json::parse(body, ec);
  if (ec || !doc.is_object())
    return unexpected();
  auto* value = doc.get_object().if_contains(name);
  if (value == nullptr)
    return unexpected();
  if (value->is_uint64())
    return value->get_uint64();
  if (value->is_int64() && value->get_int64() >= 0)
    return static_cast<std::uint64_t>(value->get_int64());
  return unexpected();
}

/// The human line for an admin command's success body.
result<std::string> render_admin(const ctl_options& opts, std::string_view body) {
  if (opts.command == "move") {
    auto epoch = read_count(body, "epoch", "/v1/admin/move");
    if (!epoch)
      return fail(epoch.error());
    return "slice " + std::to_string(*parse_slice_id(opts.args.at(0))) + " now on "
           + opts.args.at(1) + " at epoch " + std::to_string(*epoch) + "\n";
  }
  auto moved = read_count(body, "moved", "/v1/admin/" + opts.command);
  if (!moved)
    return fail(moved.error());
  auto what = plural(*moved, "slice", "slices") + " moved\n";
  if (opts.command == "drain")
    return "drained " + opts.args.at(0) + ": " + what;
  return "rebalanced: " + what;
}

} // namespace

std::string target_for(const ctl_options& opts) {
  if (opts.command == "where" || opts.command == "series")
    return "/v1/" + opts.command + "?key=" + url_encode(opts.args.at(0));
  if (opts.command == "drain")
    return "/v1/admin/drain?node=" + url_encode(opts.args.at(0));
  if (opts.command == "move")
    return "/v1/admin/move?slice=" + url_encode(opts.args.at(0))
           + "&node=" + url_encode(opts.args.at(1));
  if (opts.command == "rebalance")
    return "/v1/admin/rebalance";
  return "/v1/" + opts.command;
}

http_request request_for(const ctl_options& opts) {
  if (is_admin(opts.command))
    return {http_method::post, target_for(opts), std::max(opts.timeout, min_admin_timeout)};
  return {http_method::get, target_for(opts), opts.timeout};
}

command_output run_command(const ctl_options& opts, const http_fetch& fetch) {
  if (opts.command == "health")
    return run_health(opts, fetch);
  using renderer = result<std::string> (*)(std::string_view);
  renderer render = nullptr;
  if (opts.command == "nodes")
    render = render_nodes;
  else if (opts.command == "directory")
    render = render_directory;
  else if (opts.command == "where")
    render = render_where;
  else if (opts.command == "series")
    render = render_series;
  else if (!is_admin(opts.command))
    return {exit_usage, "", std::string{prefix} + "unknown command '" + opts.command + "'\n"};
  auto response = fetch(request_for(opts));
  if (!response)
    return unreachable(opts, response.error());
  if (!is_success(response->status)) {
    command_output result{exit_server_error, "",
                          std::string{prefix} + render_error(response->status, response->body)
                            + "\n"};
    if (opts.json && !response->body.empty())
      result.out = with_newline(response->body);
    return result;
  }
  if (opts.json)
    return {exit_ok, with_newline(std::move(response->body)), ""};
  auto text = render != nullptr ? render(response->body) : render_admin(opts, response->body);
  if (!text)
    return {exit_server_error, "", std::string{prefix} + text.error() + "\n"};
  return {exit_ok, std::move(*text), ""};
}

} // namespace tether::tools::ctl
