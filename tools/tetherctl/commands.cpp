#include "commands.hpp"

#include "tetherctl/render.hpp"
#include "tetherctl/text_table.hpp"
#include "tetherctl/url_encode.hpp"

#include <boost/json.hpp>

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
    auto response = fetch("/" + std::string{p.name});
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

} // namespace

std::string target_for(const ctl_options& opts) {
  if (opts.command == "where" || opts.command == "series")
    return "/v1/" + opts.command + "?key=" + url_encode(opts.args.at(0));
  return "/v1/" + opts.command;
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
  else
    return {exit_usage, "", std::string{prefix} + "unknown command '" + opts.command + "'\n"};
  auto response = fetch(target_for(opts));
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
  auto text = render(response->body);
  if (!text)
    return {exit_server_error, "", std::string{prefix} + text.error() + "\n"};
  return {exit_ok, std::move(*text), ""};
}

} // namespace tether::tools::ctl
