#include "tetherctl/commands.hpp"

#include <catch2/catch.hpp>

#include <map>

using namespace std::chrono_literals;
using namespace tether::tools::ctl;
using tether::tools::fail;
using tether::tools::result;

namespace {

/// A canned server: target -> response; anything else is a 404. Records every request.
struct fake_server {
  std::map<std::string, http_response> routes;
  std::vector<std::string> requested;
  std::vector<http_request> requests;
  bool reachable = true;

  http_fetch fetcher() {
    return [this](const http_request& request) -> result<http_response> {
      requested.push_back(request.target);
      requests.push_back(request);
      if (!reachable)
        return fail("connecting: Connection refused");
      auto i = routes.find(request.target);
      if (i == routes.end())
        return http_response{404, "text/plain", "not found"};
      return i->second;
    };
  }
};

ctl_options options(std::string command, std::vector<std::string> args = {},
                    bool json = false) {
  ctl_options opts;
  opts.command = std::move(command);
  opts.args = std::move(args);
  opts.json = json;
  return opts;
}

const std::string where_body
  = R"({"key":"up{job=\"a\"}","slice":12,"epoch":1,"primary":"tether-0","followers":[]})";

} // namespace

TEST_CASE("target_for: keys are percent-encoded into the query") {
  CHECK(target_for(options("nodes")) == "/v1/nodes");
  CHECK(target_for(options("directory")) == "/v1/directory");
  CHECK(target_for(options("where", {R"(up{job="a,b"})"}))
        == "/v1/where?key=up%7Bjob%3D%22a%2Cb%22%7D");
  CHECK(target_for(options("series", {"x y"})) == "/v1/series?key=x%20y");
}

TEST_CASE("run_command: success renders a table, --json passes the body through") {
  fake_server server;
  server.routes["/v1/where?key=up%7Bjob%3D%22a%22%7D"] = {200, "application/json", where_body};
  auto human = run_command(options("where", {R"(up{job="a"})"}), server.fetcher());
  CHECK(human.exit_code == exit_ok);
  CHECK(human.out.find("primary    tether-0\n") != std::string::npos);
  CHECK(human.err.empty());
  auto raw = run_command(options("where", {R"(up{job="a"})"}, true), server.fetcher());
  CHECK(raw.exit_code == exit_ok);
  CHECK(raw.out == where_body + "\n");
  CHECK(server.requested.size() == 2);
}

TEST_CASE("run_command: server errors exit 1 with the server's message") {
  fake_server server;
  server.routes["/v1/series?key=%7B"]
    = {400, "application/json", R"({"error":"INVALID_KEY","message":"empty metric name"})"};
  auto out = run_command(options("series", {"{"}), server.fetcher());
  CHECK(out.exit_code == exit_server_error);
  CHECK(out.out.empty());
  CHECK(out.err == "tetherctl: INVALID_KEY: empty metric name (HTTP 400)\n");
  auto raw = run_command(options("series", {"{"}, true), server.fetcher());
  CHECK(raw.exit_code == exit_server_error);
  CHECK(raw.out == R"({"error":"INVALID_KEY","message":"empty metric name"})" "\n");
  auto missing = run_command(options("nodes"), server.fetcher());
  CHECK(missing.exit_code == exit_server_error);
  CHECK(missing.err == "tetherctl: HTTP 404: not found\n");
}

TEST_CASE("run_command: a malformed success body exits 1") {
  fake_server server;
  server.routes["/v1/nodes"] = {200, "application/json", "{\"nodes\":42}"};
  auto out = run_command(options("nodes"), server.fetcher());
  CHECK(out.exit_code == exit_server_error);
  CHECK(out.err.find("unexpected response from /v1/nodes") != std::string::npos);
}

TEST_CASE("run_command: an unreachable server exits 3") {
  fake_server server;
  server.reachable = false;
  auto out = run_command(options("directory"), server.fetcher());
  CHECK(out.exit_code == exit_unreachable);
  CHECK(out.err.find("cannot reach 127.0.0.1:7480") != std::string::npos);
  CHECK(run_command(options("health"), server.fetcher()).exit_code == exit_unreachable);
}

TEST_CASE("run_command: health asks both probes") {
  fake_server server;
  server.routes["/healthz"] = {200, "text/plain", "ok"};
  server.routes["/readyz"] = {200, "text/plain", "ready\n"};
  auto ok = run_command(options("health"), server.fetcher());
  CHECK(ok.exit_code == exit_ok);
  CHECK(ok.out == "healthz  200  ok\nreadyz   200  ready\n");
  CHECK(server.requested == std::vector<std::string>{"/healthz", "/readyz"});
  server.routes["/readyz"] = {503, "text/plain", "not ready: joining"};
  auto not_ready = run_command(options("health"), server.fetcher());
  CHECK(not_ready.exit_code == exit_server_error);
  CHECK(not_ready.out == "healthz  200  ok\nreadyz   503  not ready: joining\n");
  CHECK_FALSE(not_ready.err.empty());
  auto raw = run_command(options("health", {}, true), server.fetcher());
  CHECK(raw.exit_code == exit_server_error);
  CHECK(raw.out
        == R"({"healthz":{"status":200,"body":"ok"},"readyz":{"status":503,"body":"not ready: joining"}})"
           "\n");
}

TEST_CASE("request_for: admin commands are POSTs with encoded values and a long deadline") {
  auto drain = request_for(options("drain", {"tether-2"}));
  CHECK(drain.method == http_method::post);
  CHECK(drain.target == "/v1/admin/drain?node=tether-2");
  CHECK(drain.timeout >= 120s);
  auto move = request_for(options("move", {"12", "node a&b=c"}));
  CHECK(move.method == http_method::post);
  CHECK(move.target == "/v1/admin/move?slice=12&node=node%20a%26b%3Dc");
  CHECK(move.timeout >= 120s);
  auto rebalance = request_for(options("rebalance"));
  CHECK(rebalance.method == http_method::post);
  CHECK(rebalance.target == "/v1/admin/rebalance");
  CHECK(rebalance.timeout >= 120s);
  auto longer = options("rebalance");
  longer.timeout = 300s;
  CHECK(request_for(longer).timeout == 300s);
  auto nodes = request_for(options("nodes"));
  CHECK(nodes.method == http_method::get);
  CHECK(nodes.target == "/v1/nodes");
  CHECK(nodes.timeout == default_timeout);
}

TEST_CASE("run_command: drain, move and rebalance render the moves") {
  fake_server server;
  server.routes["/v1/admin/drain?node=tether-2"] = {200, "application/json", R"({"moved":341})"};
  server.routes["/v1/admin/move?slice=12&node=tether-3"]
    = {200, "application/json", R"({"epoch":2})"};
  server.routes["/v1/admin/rebalance"] = {200, "application/json", R"({"moved":1})"};
  auto drain = run_command(options("drain", {"tether-2"}), server.fetcher());
  CHECK(drain.exit_code == exit_ok);
  CHECK(drain.out == "drained tether-2: 341 slices moved\n");
  CHECK(drain.err.empty());
  auto move = run_command(options("move", {"12", "tether-3"}), server.fetcher());
  CHECK(move.exit_code == exit_ok);
  CHECK(move.out == "slice 12 now on tether-3 at epoch 2\n");
  auto rebalance = run_command(options("rebalance"), server.fetcher());
  CHECK(rebalance.exit_code == exit_ok);
  CHECK(rebalance.out == "rebalanced: 1 slice moved\n");
  auto raw = run_command(options("drain", {"tether-2"}, true), server.fetcher());
  CHECK(raw.exit_code == exit_ok);
  CHECK(raw.out == R"({"moved":341})" "\n");
  REQUIRE(server.requests.size() == 4);
  for (const auto& request : server.requests) {
    CHECK(request.method == http_method::post);
    CHECK(request.timeout >= 120s);
  }
}

TEST_CASE("run_command: admin errors exit 1 with the server's message") {
  fake_server server;
  const std::string unavailable
    = R"({"error":"UNAVAILABLE","message":"a standalone node has no other node to move slices to"})";
  server.routes["/v1/admin/rebalance"] = {503, "application/json", unavailable};
  server.routes["/v1/admin/move?slice=99999&node=tether-3"]
    = {400, "application/json", R"({"error":"INVALID_ARGUMENT","message":"no slice 99999"})"};
  auto out = run_command(options("rebalance"), server.fetcher());
  CHECK(out.exit_code == exit_server_error);
  CHECK(out.out.empty());
  CHECK(out.err
        == "tetherctl: UNAVAILABLE: a standalone node has no other node to move slices to "
           "(HTTP 503)\n");
  auto raw = run_command(options("rebalance", {}, true), server.fetcher());
  CHECK(raw.exit_code == exit_server_error);
  CHECK(raw.out == unavailable + "\n");
  auto bad = run_command(options("move", {"99999", "tether-3"}), server.fetcher());
  CHECK(bad.exit_code == exit_server_error);
  CHECK(bad.err == "tetherctl: INVALID_ARGUMENT: no slice 99999 (HTTP 400)\n");
  server.routes["/v1/admin/drain?node=tether-2"] = {200, "application/json", R"({"moved":-1})"};
  auto malformed = run_command(options("drain", {"tether-2"}), server.fetcher());
  CHECK(malformed.exit_code == exit_server_error);
  CHECK(malformed.err.find("unexpected response from /v1/admin/drain") != std::string::npos);
  server.reachable = false;
  CHECK(run_command(options("drain", {"tether-2"}), server.fetcher()).exit_code
        == exit_unreachable);
}
