#include "run_context.hpp"

#include <utility>

#include <iostream>

namespace tether::tools::load {

run_context::run_context(const load_options& opts, std::string run_id)
  : opts(opts), run_id(std::move(run_id)), budget(opts.samples) {
  // nop
}

void run_context::start_measuring(std::chrono::steady_clock::time_point start) {
  measure_from_.store((start + opts.warmup).time_since_epoch().count(),
                      std::memory_order_relaxed);
}

void run_context::report_error(const std::string& text) {
  errors.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> guard{print_mutex_};
  if (printed_ < opts.max_printed_errors) {
    std::cerr << program << ": error: " << text << '\n';
  } else if (printed_ == opts.max_printed_errors) {
    std::cerr << program << ": further errors are counted but not printed\n";
  }
  ++printed_;
}

void run_context::note(const std::string& text) {
  std::lock_guard<std::mutex> guard{print_mutex_};
  if (noted_ < opts.max_printed_errors) {
    std::cerr << program << ": " << text << '\n';
  } else if (noted_ == opts.max_printed_errors) {
    std::cerr << program << ": further retries and reconnects are counted but not printed\n";
  }
  ++noted_;
}

void run_context::warn_once(std::atomic<bool>& once, const std::string& text) {
  if (once.exchange(true))
    return;
  std::lock_guard<std::mutex> guard{print_mutex_};
  std::cerr << program << ": warning: " << text << '\n';
}

} // namespace tether::tools::load
