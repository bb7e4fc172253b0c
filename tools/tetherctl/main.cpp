// tetherctl: the operator's command-line client for a Tether node's HTTP JSON API.

#include "tetherctl/commands.hpp"
#include "tetherctl/ctl_options.hpp"
#include "tetherctl/http_client.hpp"
#include "tetherctl/watch.hpp"
#include "common/tls_client.hpp"
#include "common/token_file.hpp"

#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace ctl = tether::tools::ctl;

int main(int argc, char** argv) {
  std::vector<std::string_view> args;
  for (int i = 1; i < argc; ++i)
    args.emplace_back(argv[i]);
  auto opts = ctl::parse_ctl_options(args, std::getenv(ctl::server_env_var),
                                     std::getenv(ctl::token_env_var));
  if (!opts) {
    std::cerr << "tetherctl: " << opts.error() << "\n\n" << ctl::ctl_usage();
    return ctl::exit_usage;
  }
  if (opts->help) {
    std::cout << ctl::ctl_usage();
    return ctl::exit_ok;
  }
  if (!opts->token_file.empty()) {
    auto token = tether::tools::read_token_file(opts->token_file);
    if (!token) {
      std::cerr << "tetherctl: " << token.error() << "\n";
      return ctl::exit_usage;
    }
    opts->token = std::move(token.value());
  }
  std::shared_ptr<boost::asio::ssl::context> tls;
  if (opts->server.tls) {
    auto ctx = tether::tools::make_tls_client_context(opts->tls);
    if (!ctx) {
      std::cerr << "tetherctl: " << ctx.error() << "\n";
      return ctl::exit_usage;
    }
    tls = std::move(ctx.value());
  }
  if (opts->command == "watch")
    return ctl::run_watch(*opts, tls, std::cout, std::cerr);
  auto fetch = [&](const ctl::http_request& request) {
    return ctl::http_send(opts->server, request.method, request.target, request.timeout, {},
                          opts->token, tls);
  };
  auto output = ctl::run_command(*opts, fetch);
  std::cout << output.out << std::flush;
  std::cerr << output.err << std::flush;
  return output.exit_code;
}
