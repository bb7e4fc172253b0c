// Measures the heap bytes one output series costs in the slices of a node: N counter
// series spread over S slices (by key hash, as a node spreads them), created through
// slice_state::apply from batches of 1000 samples as the shards do, in the steady
// state of a series written every window:
//   one open   the window before has closed, the current one is open
//   two open   the next window has opened too, while the current one is still within
//              its lateness (what a series holds for `lateness` of every window)
// Prints heap bytes per series as malloc accounts them (chunk overhead included), and
// the entries the shard's close schedule holds per series (`opened_window`, 16 bytes
// each, in vectors that may double).
//
// usage: tether-series-memory [SERIES (default 100000)] [SLICES (default 1)]

#include <malloc.h>

#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "keys/slicing.hpp"
#include "series/slice_state.hpp"

using namespace tether;

namespace {

constexpr int64_t window = 10000;
constexpr int64_t now = 1'000'000'000; // a multiple of the window

struct node {
  std::vector<std::unique_ptr<series::slice_state>> slices;
  std::vector<std::string> keys;
  uint32_t slice_count = 1;
  uint64_t seq = 0;
  size_t scheduled = 0; // close-schedule entries the shard would hold

  /// Writes one counter sample at `ts` to every series in batches of 1000 samples
  /// (keys in creation order, spread over the slices), split into one range per
  /// slice and applied at `at`, as a node's shards apply a gateway's batches.
  void write(int64_t ts, int64_t at) {
    series::apply_context ctx;
    ctx.now_ms = at;
    ctx.lateness_ms = 5000;
    std::vector<series::opened_window> opened;
    for (size_t b = 0; b < keys.size(); b += 1000) {
      series::shard_write w;
      w.producer = "bench";
      w.sequence = ++seq;
      for (size_t i = b; i < std::min(keys.size(), b + 1000); ++i) {
        wire::keyed_sample x;
        x.key_offset = static_cast<uint32_t>(w.keys.size());
        x.key_size = static_cast<uint32_t>(keys[i].size());
        w.keys += keys[i];
        x.hash = keys::key_hash(keys[i]);
        x.input_hash = x.hash;
        x.slice = keys::slice_of(x.hash, slice_count);
        x.kind = kind::counter;
        x.value = 1;
        x.window_ms = static_cast<uint32_t>(window);
        x.timestamp_ms = ts;
        w.samples.push_back(x);
      }
      std::stable_sort(w.samples.begin(), w.samples.end(),
                       [](auto& x, auto& y) { return x.slice < y.slice; });
      for (uint32_t i = 0; i < w.samples.size();) {
        auto j = i;
        while (j < w.samples.size() && w.samples[j].slice == w.samples[i].slice)
          ++j;
        w.ranges.push_back({w.samples[i].slice, 1, i, j});
        i = j;
      }
      for (auto& r : w.ranges)
        slices[r.slice]->apply(w, r, ctx, opened);
    }
    scheduled += opened.size();
  }

  /// Closes the window at `start` of every series, as the shard does when it is due.
  void close(int64_t start) {
    std::vector<series::opened_window> due;
    for (auto& sl : slices)
      sl->open_windows(due);
    for (auto& o : due)
      if (o.start == start)
        slices[o.slice]->close_windows(o.window_ms, o.start, [&](series::series_entry& e) {
          e.state.close(start, {});
        });
    std::vector<series::opened_window> after;
    for (auto& sl : slices)
      sl->open_windows(after);
    scheduled = after.size();
  }
};

void report(const char* phase, size_t before, size_t n, const node& nd) {
  auto after = mallinfo2().uordblks;
  std::printf("  %-9s heap bytes per series %6.1f, close-schedule entries per series %.4f\n",
              phase, static_cast<double>(after - before) / static_cast<double>(n),
              static_cast<double>(nd.scheduled) / static_cast<double>(n));
}

} // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100000;
  const uint32_t slice_count = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1;
  node nd;
  nd.slice_count = slice_count;
  for (size_t i = 0; i < n; ++i)
    nd.keys.push_back("tether_load_7_total{group=\"" + std::to_string(i) + "\"}");
  auto before = mallinfo2().uordblks;
  for (uint32_t s = 0; s < slice_count; ++s)
    nd.slices.push_back(std::make_unique<series::slice_state>(s));
  nd.write(now - window + 1, now);  // window W0, closes below
  nd.write(now + 1, now + 1);       // window W1, stays open
  nd.close(now - window);
  std::printf("series %zu in %u slice(s) (series_entry %zu bytes inline)\n",
              nd.slices.empty() ? 0 : n, slice_count, sizeof(series::series_entry));
  report("one open", before, n, nd);
  nd.write(now + window + 1, now + window + 1); // W2 opens while W1 is still open
  report("two open", before, n, nd);
  return 0;
}
