// Measures the heap bytes one output series costs inside a slice: N counter series,
// each with a closed window and an open one (the steady state of a series written
// every window), created through slice_state::apply as the shards do. Prints bytes
// per series as malloc accounts them (chunk overhead included).

#include <malloc.h>

#include <cstdio>
#include <string>
#include <vector>

#include "keys/slicing.hpp"
#include "series/slice_state.hpp"

using namespace tether;

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 100000;
  const int64_t now = 1'000'000'000;
  auto before = mallinfo2().uordblks;
  series::slice_state slice{0};
  std::vector<series::opened_window> opened;
  series::apply_context ctx;
  ctx.now_ms = now;
  ctx.lateness_ms = 5000;
  uint64_t seq = 1;
  for (int b = 0; b < n; b += 1000) {
    series::shard_write w;
    w.producer = "bench";
    for (int i = b; i < std::min(n, b + 1000); ++i) {
      auto key = "tether_load_7_total{group=\"" + std::to_string(i) + "\"}";
      wire::keyed_sample s;
      s.key_offset = static_cast<uint32_t>(w.keys.size());
      s.key_size = static_cast<uint32_t>(key.size());
      w.keys += key;
      s.hash = keys::key_hash(key);
      s.input_hash = s.hash;
      s.kind = kind::counter;
      s.value = 1;
      s.window_ms = 10000;
      s.timestamp_ms = now - 5000; // the window that closes below
      w.samples.push_back(s);
    }
    w.ranges.push_back({0, 1, 0, static_cast<uint32_t>(w.samples.size())});
    w.sequence = seq++;
    slice.apply(w, w.ranges[0], ctx, opened);
    for (auto& s : w.samples)
      s.timestamp_ms = now + 6000; // the next window, left open
    w.sequence = seq++;
    slice.apply(w, w.ranges[0], ctx, opened);
  }
  for (auto& o : opened)
    if (o.start < now)
      o.entry->state.close(o.start, {});
  auto after = mallinfo2().uordblks;
  std::printf("series %zu, heap bytes per series %.1f (series_entry %zu bytes inline)\n",
              slice.series_count(),
              static_cast<double>(after - before) / static_cast<double>(n),
              sizeof(series::series_entry));
  return 0;
}
