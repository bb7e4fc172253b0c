// tether-nats-baseline: tether-load's workload through NATS JetStream, aggregated with
// Tether's own code in a consumer: the broker baseline of docs/benchmarks.md.

#include "tether-load/nats/nats_options.hpp"
#include "tether-load/nats/nats_run.hpp"

#include <google/protobuf/stubs/common.h>
#include <nats/nats.h>

#include <signal.h>

#include <iostream>

namespace nats = tether::tools::nats;

int main(int argc, char** argv) {
  GOOGLE_PROTOBUF_VERIFY_VERSION;
  // Before any thread exists (libnats starts its own): SIGINT and SIGTERM are taken
  // only by the run's sigtimedwait, never delivered in the middle of the C client.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::vector<std::string_view> args;
  for (int i = 1; i < argc; ++i)
    args.emplace_back(argv[i]);
  auto opts = nats::parse_nats_options(args);
  if (!opts) {
    std::cerr << "tether-nats-baseline: " << opts.error() << "\n\n" << nats::nats_usage();
    return 2;
  }
  if (opts->help) {
    std::cout << nats::nats_usage();
    return 0;
  }
  if (nats_Open(-1) != NATS_OK) {
    std::cerr << "tether-nats-baseline: cannot initialise the NATS library\n";
    return 1;
  }
  int code = 1;
  {
    nats::nats_run run{*opts};
    auto totals = run.run();
    if (!totals) {
      std::cerr << "tether-nats-baseline: " << totals.error() << '\n';
    } else {
      if (opts->load.json)
        std::cout << nats::render_json(*opts, *totals);
      else
        std::cout << nats::render_text(*opts, *totals);
      code = nats::run_succeeded(*opts, *totals) ? 0 : 1;
    }
  }
  nats_CloseAndWait(5000);
  return code;
}
