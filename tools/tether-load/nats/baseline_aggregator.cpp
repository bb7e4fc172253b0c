#include "baseline_aggregator.hpp"

#include "keys/slicing.hpp"

#include <cmath>

namespace tether::tools::nats {

using tether::series::opened_window;
using tether::series::series_entry;
using tether::series::slice_range;
using tether::series::slice_state;

baseline_aggregator::baseline_aggregator(aggregator_config cfg)
  : cfg_(std::move(cfg)),
    keyer_(cfg_.limits, cfg_.slice_count),
    slices_(cfg_.slice_count) {
  if (!cfg_.rules)
    cfg_.rules = tether::rules::rule_set::empty(tether::rules::rule_defaults{});
}

slice_state& baseline_aggregator::slice(std::uint32_t id) {
  auto& s = slices_[id];
  if (!s)
    s = std::make_unique<slice_state>(id);
  return *s;
}

apply_outcome baseline_aggregator::apply(std::string_view producer, const void* data,
                                         std::size_t size, std::int64_t received_ms,
                                         std::int64_t now_ms) {
  apply_outcome out;
  arena_.Reset();
  auto* frame = google::protobuf::Arena::CreateMessage<tether::v1::ClientFrame>(&arena_);
  if (!frame->ParseFromArray(data, static_cast<int>(size)) || !frame->has_write()) {
    out.error = "MALFORMED_FRAME: not a ClientFrame{write}";
    return out;
  }
  close_due(now_ms);
  if (auto err = keyer_.key(frame->write(), received_ms, *cfg_.rules, keyed_)) {
    out.error = std::string{tether::to_string_view(err.code)} + ": " + err.message;
    return out;
  }
  // Split by slice: a stable counting sort, so that each slice sees its samples in batch
  // order (what the router's splitter does before a shard applies them).
  auto n = static_cast<std::uint32_t>(keyed_.samples.size());
  counts_.assign(cfg_.slice_count + 1, 0);
  for (const auto& s : keyed_.samples)
    ++counts_[s.slice + 1];
  for (std::uint32_t i = 1; i <= cfg_.slice_count; ++i)
    counts_[i] += counts_[i - 1];
  write_.producer.assign(producer.data(), producer.size());
  write_.sequence = frame->write().sequence();
  write_.keys.swap(keyed_.keys); // offsets stay valid: the samples keep them
  write_.samples.resize(n);
  write_.ranges.clear();
  {
    auto next = counts_;
    for (const auto& s : keyed_.samples)
      write_.samples[next[s.slice]++] = s;
  }
  opened_.clear();
  tether::series::apply_context ctx;
  ctx.now_ms = now_ms;
  ctx.lateness_ms = cfg_.lateness_ms;
  ctx.accuracy = cfg_.accuracy;
  ctx.staleness_ms = cfg_.staleness_ms;
  std::uint32_t ranges = 0;
  std::uint32_t duplicates = 0;
  for (std::uint32_t s = 0; s < cfg_.slice_count; ++s) {
    if (counts_[s] == counts_[s + 1])
      continue;
    slice_range r;
    r.slice = s;
    r.begin = counts_[s];
    r.end = counts_[s + 1];
    auto& sl = slice(s);
    auto before = sl.series_count();
    auto res = sl.apply(write_, r, ctx, opened_);
    series_ += sl.series_count() - before;
    ++ranges;
    out.applied += res.applied;
    out.late += res.late;
    if (res.duplicate)
      ++duplicates;
    if (res.code != tether::errc::none && out.error.empty())
      out.error = std::string{tether::to_string_view(res.code)} + ": " + res.message;
  }
  out.duplicate = ranges > 0 && duplicates == ranges;
  for (const auto& o : opened_) {
    auto at = o.start + static_cast<std::int64_t>(o.window_ms)
              + static_cast<std::int64_t>(cfg_.lateness_ms);
    closing_[at].push_back(o);
  }
  keyed_.keys.swap(write_.keys); // give the buffer back to the keyer's batch
  return out;
}

std::uint64_t baseline_aggregator::close_due(std::int64_t now_ms) {
  std::uint64_t closed = 0;
  auto stale_before = now_ms - static_cast<std::int64_t>(cfg_.staleness_ms);
  while (!closing_.empty() && closing_.begin()->first <= now_ms) {
    auto due = std::move(closing_.begin()->second);
    closing_.erase(closing_.begin());
    for (const auto& o : due) {
      auto& sl = slice(o.slice);
      sl.close_windows(o.window_ms, o.start, [&](series_entry& e) {
        auto& state = e.state;
        const auto& rules = cfg_.rules->rules();
        const auto& quantiles = state.rule > 0 && state.rule <= rules.size()
                                  ? rules[state.rule - 1].quantiles
                                  : cfg_.rules->defaults().quantiles;
        state.close(o.start, quantiles);
        state.forget_inputs(stale_before);
        ++closed;
      });
    }
  }
  windows_closed_ += closed;
  return closed;
}

const tether::series::series_state* baseline_aggregator::find(std::string_view key) {
  auto id = tether::keys::slice_of(tether::keys::key_hash(key), cfg_.slice_count);
  auto& s = slices_[id];
  if (!s)
    return nullptr;
  auto* e = s->find(key);
  return e == nullptr ? nullptr : &e->state;
}

std::uint64_t running_count(const tether::series::series_state& state) {
  if (state.kind == tether::kind::counter)
    return state.total > 0 ? static_cast<std::uint64_t>(std::llround(state.total)) : 0;
  return state.count;
}

} // namespace tether::tools::nats
