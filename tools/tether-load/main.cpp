// tether-load: load generator and benchmark for a Tether node's /v1/stream endpoint.

#include "common/tls_client.hpp"
#include "common/token_file.hpp"
#include "tether-load/load_options.hpp"
#include "tether-load/load_report.hpp"
#include "tether-load/load_run.hpp"

#include <google/protobuf/stubs/common.h>

#include <iostream>

namespace load = tether::tools::load;

int main(int argc, char** argv) {
  GOOGLE_PROTOBUF_VERIFY_VERSION;
  std::vector<std::string_view> args;
  for (int i = 1; i < argc; ++i)
    args.emplace_back(argv[i]);
  auto opts = load::parse_load_options(args);
  if (!opts) {
    std::cerr << "tether-load: " << opts.error() << "\n\n" << load::load_usage();
    return 2;
  }
  if (opts->help) {
    std::cout << load::load_usage();
    return 0;
  }
  if (!opts->token_file.empty()) {
    auto token = tether::tools::read_token_file(opts->token_file);
    if (!token) {
      std::cerr << "tether-load: " << token.error() << '\n';
      return 2;
    }
    opts->token = std::move(token.value());
  }
  std::shared_ptr<boost::asio::ssl::context> tls;
  if (load::uses_tls(*opts)) {
    auto ctx = tether::tools::make_tls_client_context(opts->tls);
    if (!ctx) {
      std::cerr << "tether-load: " << ctx.error() << '\n';
      return 2;
    }
    tls = std::move(ctx.value());
  }
  load::load_run run{*opts, tls};
  auto totals = run.run();
  if (!totals) {
    std::cerr << "tether-load: " << totals.error() << '\n';
    return 1;
  }
  if (opts->json)
    std::cout << load::render_report_json(*opts, *totals);
  else
    std::cout << load::render_report_text(*opts, *totals);
  return load::run_succeeded(*opts, *totals) ? 0 : 1;
}
