#include "series/series_state.hpp"

#include <algorithm>

namespace tether::series {

series_state::series_state(const series_state& other)
  : total(other.total),
    closed_total(other.closed_total),
    last(other.last),
    min(other.min),
    max(other.max),
    sum(other.sum),
    count(other.count),
    updated_ms(other.updated_ms),
    closed_until(other.closed_until),
    last_closed(other.last_closed),
    window_ms(other.window_ms),
    rule(other.rule),
    kind(other.kind),
    slots_{other.slots_[0], other.slots_[1]},
    extra_(other.extra_ ? std::make_unique<series_extra>(*other.extra_) : nullptr) {
}

series_state& series_state::operator=(const series_state& other) {
  if (this != &other)
    *this = series_state{other};
  return *this;
}

const ddsketch* series_state::sketch(int64_t start) const noexcept {
  return const_cast<series_state*>(this)->sketch_at(start);
}

ddsketch* series_state::sketch_at(int64_t start) noexcept {
  if (!extra_)
    return nullptr;
  for (auto& s : extra_->sketches)
    if (s.start == start)
      return &s.sketch;
  return nullptr;
}

const std::vector<input_state>& series_state::inputs() const noexcept {
  static const std::vector<input_state> none;
  return extra_ ? extra_->inputs : none;
}

void series_state::insert_window(size_t i, const window_agg& w) {
  auto n = open_count();
  if (n >= 2)
    extra().more_open.emplace_back();
  for (auto j = n; j > i; --j)
    window_at(j) = window_at(j - 1);
  window_at(i) = w;
}

void series_state::erase_window(size_t i) {
  auto n = open_count();
  for (auto j = i; j + 1 < n; ++j)
    window_at(j) = window_at(j + 1);
  if (n > 2) {
    extra_->more_open.pop_back();
    if (extra_->more_open.empty())
      extra_->more_open.shrink_to_fit();
    trim_extra();
  } else {
    slots_[n - 1] = window_agg{};
  }
}

void series_state::assign(const std::vector<window_agg>& windows, series_extra&& extra) {
  slots_[0] = slots_[1] = window_agg{};
  extra_ = std::make_unique<series_extra>(std::move(extra));
  extra_->more_open.clear();
  size_t n = 0;
  for (auto& w : windows)
    if (w.count > 0)
      insert_window(n++, w);
  trim_extra();
}

apply_outcome series_state::apply(const wire::keyed_sample& s, int64_t now_ms,
                                  int64_t lateness_ms, double accuracy,
                                  int64_t staleness_ms) {
  auto start = window_start(s.timestamp_ms);
  auto end = start + static_cast<int64_t>(window_ms);
  if (end <= closed_until || end + lateness_ms <= now_ms)
    return apply_outcome::late;
  double v = s.value;
  if (kind == kind::counter && s.mode == counter_mode::cumulative) {
    // Per input series: the first report is a baseline; a decrease is a reset of
    // the input, whose new value is all increase since.
    auto& inputs = extra().inputs;
    auto it = std::find_if(inputs.begin(), inputs.end(),
                           [&](const input_state& in) { return in.hash == s.input_hash; });
    double increase = 0;
    if (it == inputs.end()) {
      // Grow by a quarter instead of doubling: an output of many inputs keeps
      // little unused capacity.
      if (inputs.size() == inputs.capacity())
        inputs.reserve(inputs.size() + inputs.size() / 4 + 4);
      inputs.push_back(input_state{s.input_hash, v, s.timestamp_ms});
    } else if (now_ms - it->seen_ms >= staleness_ms) {
      // Forgotten: a returning input starts from a new baseline.
      it->last = v;
      it->seen_ms = s.timestamp_ms;
    } else {
      increase = v >= it->last ? v - it->last : v;
      it->last = v;
      it->seen_ms = std::max(it->seen_ms, s.timestamp_ms);
    }
    v = increase;
  }
  if (kind == kind::counter)
    total += v;
  if (count == 0) {
    min = v;
    max = v;
  } else {
    min = std::min(min, v);
    max = std::max(max, v);
  }
  last = v;
  sum += v;
  ++count;
  updated_ms = std::max(updated_ms, s.timestamp_ms);
  // The sample's window, opened on its first sample.
  auto n = open_count();
  size_t i = 0;
  while (i < n && window_at(i).start < start)
    ++i;
  bool opened = i == n || window_at(i).start != start;
  if (opened) {
    insert_window(i, window_agg{start, 1, v, v, v, v, s.timestamp_ms});
    if (kind == kind::histogram) {
      auto& sketches = extra().sketches;
      auto at = std::find_if(sketches.begin(), sketches.end(),
                             [&](const window_sketch& x) { return x.start > start; });
      sketches.insert(at, window_sketch{start, ddsketch{accuracy}})->sketch.add(v);
    }
    return apply_outcome::applied_new_window;
  }
  auto& w = window_at(i);
  w.min = std::min(w.min, v);
  w.max = std::max(w.max, v);
  w.sum += v;
  ++w.count;
  if (s.timestamp_ms >= w.last_ts) {
    w.last = v;
    w.last_ts = s.timestamp_ms;
  }
  if (kind == kind::histogram)
    if (auto* sk = sketch_at(start))
      sk->add(v);
  return apply_outcome::applied;
}

window_view series_state::close(int64_t start, const std::vector<double>& quantiles) {
  window_view out;
  auto end = start + static_cast<int64_t>(window_ms);
  closed_until = std::max(closed_until, end);
  auto n = open_count();
  size_t i = 0;
  while (i < n && window_at(i).start != start)
    ++i;
  if (i == n)
    return out;
  auto& w = window_at(i);
  out.start_ms = start;
  out.end_ms = end;
  out.count = w.count;
  out.sum = w.sum;
  out.min = w.min;
  out.max = w.max;
  out.last = w.last;
  out.mean = w.count > 0 ? w.sum / static_cast<double>(w.count) : 0;
  if (kind == kind::counter) {
    closed_total += w.sum;
    out.increase = w.sum;
    out.total = closed_total;
    out.rate = w.sum * 1000.0 / static_cast<double>(window_ms);
  }
  last_closed = closed_window{start, w.count, w.sum, w.min, w.max, w.last};
  erase_window(i);
  if (extra_) {
    auto& sketches = extra_->sketches;
    auto sk = std::find_if(sketches.begin(), sketches.end(),
                           [&](const window_sketch& x) { return x.start == start; });
    extra_->quantiles.clear();
    if (sk != sketches.end()) {
      for (auto q : quantiles)
        out.quantiles.emplace_back(q, sk->sketch.quantile(q));
      extra_->quantiles = out.quantiles;
      sketches.erase(sk);
    }
    trim_extra();
  }
  return out;
}

window_view series_state::last_window() const {
  window_view v;
  if (last_closed.count == 0)
    return v;
  auto& c = last_closed;
  v.start_ms = c.start;
  v.end_ms = c.start + static_cast<int64_t>(window_ms);
  v.count = c.count;
  v.sum = c.sum;
  v.min = c.min;
  v.max = c.max;
  v.last = c.last;
  v.mean = c.sum / static_cast<double>(c.count);
  if (kind == kind::counter) {
    v.increase = c.sum;
    v.total = closed_total;
    v.rate = c.sum * 1000.0 / static_cast<double>(window_ms);
  }
  if (extra_)
    v.quantiles = extra_->quantiles;
  return v;
}

size_t series_state::forget_inputs(int64_t cutoff_ms) {
  if (!extra_ || extra_->inputs.empty())
    return 0;
  auto& inputs = extra_->inputs;
  auto before = inputs.size();
  inputs.erase(std::remove_if(inputs.begin(), inputs.end(),
                              [&](const input_state& in) { return in.seen_ms < cutoff_ms; }),
               inputs.end());
  auto forgotten = before - inputs.size();
  // Give back what a burst of inputs left unused.
  if (forgotten > 0 && inputs.capacity() > 2 * inputs.size() + 8)
    inputs.shrink_to_fit();
  trim_extra();
  return forgotten;
}

void series_state::fill(series_view& view) const {
  view.found = true;
  view.kind = kind;
  view.total = total;
  view.last = last;
  view.min = min;
  view.max = max;
  view.sum = sum;
  view.count = count;
  view.updated_ms = updated_ms;
  view.window = last_window();
  view.rule = rule;
}

} // namespace tether::series
