#include "routing/split.hpp"

#include <algorithm>

namespace tether::routing {

void splitter::split(const wire::keyed_batch& batch, const route_table& table,
                     std::vector<routed_write>& out,
                     std::vector<uint32_t>& unroutable) {
  out.clear();
  unroutable.clear();
  auto slices = table.slice_count();
  auto n = static_cast<uint32_t>(batch.samples.size());
  // Counting sort of sample indices by slice: stable, so every slice sees its samples
  // in batch order.
  counts_.assign(slices + 1, 0);
  for (auto& s : batch.samples)
    ++counts_[s.slice + 1];
  for (uint32_t i = 1; i <= slices; ++i)
    counts_[i] += counts_[i - 1];
  order_.resize(n);
  {
    auto next = counts_; // running insert positions
    for (uint32_t i = 0; i < n; ++i)
      order_[next[batch.samples[i].slice]++] = i;
  }
  // Walk slices in order; append each slice's run to its shard's write.
  for (uint32_t s = 0; s < slices; ++s) {
    auto begin = counts_[s];
    auto end = counts_[s + 1];
    if (begin == end)
      continue;
    auto& r = table.slices[s];
    if (!r.shard) {
      unroutable.push_back(s);
      continue;
    }
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const routed_write& w) { return w.shard == r.shard; });
    if (it == out.end()) {
      out.push_back(routed_write{r.shard, {}});
      it = out.end() - 1;
      it->write.producer = batch.producer;
      it->write.sequence = batch.sequence;
    }
    auto& w = it->write;
    series::slice_range range;
    range.slice = s;
    range.epoch = r.epoch;
    range.begin = static_cast<uint32_t>(w.samples.size());
    for (auto k = begin; k < end; ++k) {
      auto sample = batch.samples[order_[k]];
      auto key = batch.key(sample);
      sample.key_offset = static_cast<uint32_t>(w.keys.size());
      w.keys.append(key.data(), key.size());
      w.samples.push_back(sample);
    }
    range.end = static_cast<uint32_t>(w.samples.size());
    w.ranges.push_back(range);
  }
}

} // namespace tether::routing
