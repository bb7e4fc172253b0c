#include "series/series_state.hpp"

#include <algorithm>

namespace tether::series {

window_agg::window_agg(const window_agg& other)
  : start(other.start),
    count(other.count),
    sum(other.sum),
    min(other.min),
    max(other.max),
    last(other.last),
    last_ts(other.last_ts),
    sketch(other.sketch ? std::make_unique<ddsketch>(*other.sketch) : nullptr) {
}

window_agg& window_agg::operator=(const window_agg& other) {
  if (this != &other)
    *this = window_agg{other};
  return *this;
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
    auto it = std::find_if(inputs.begin(), inputs.end(),
                           [&](const input_state& in) { return in.hash == s.input_hash; });
    double increase = 0;
    if (it == inputs.end()) {
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
  auto it = std::lower_bound(open.begin(), open.end(), start,
                             [](const window_agg& w, int64_t x) { return w.start < x; });
  bool opened = false;
  if (it == open.end() || it->start != start) {
    it = open.insert(it, window_agg{});
    it->start = start;
    if (kind == kind::histogram)
      it->sketch = std::make_unique<ddsketch>(accuracy);
    opened = true;
  }
  auto& w = *it;
  if (w.count == 0) {
    w.min = v;
    w.max = v;
  } else {
    w.min = std::min(w.min, v);
    w.max = std::max(w.max, v);
  }
  w.sum += v;
  ++w.count;
  if (w.count == 1 || s.timestamp_ms >= w.last_ts) {
    w.last = v;
    w.last_ts = s.timestamp_ms;
  }
  if (w.sketch)
    w.sketch->add(v);
  return opened ? apply_outcome::applied_new_window : apply_outcome::applied;
}

window_view series_state::close(int64_t start, const std::vector<double>& quantiles) {
  window_view out;
  auto it = std::find_if(open.begin(), open.end(),
                         [&](const window_agg& w) { return w.start == start; });
  auto end = start + static_cast<int64_t>(window_ms);
  closed_until = std::max(closed_until, end);
  if (it == open.end())
    return out;
  auto& w = *it;
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
  if (w.sketch)
    for (auto q : quantiles)
      out.quantiles.emplace_back(q, w.sketch->quantile(q));
  open.erase(it);
  last_closed.start = out.start_ms;
  last_closed.count = out.count;
  last_closed.sum = out.sum;
  last_closed.min = out.min;
  last_closed.max = out.max;
  last_closed.last = out.last;
  last_closed.total = out.total;
  last_closed.quantiles = out.quantiles;
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
    v.total = c.total;
    v.rate = c.sum * 1000.0 / static_cast<double>(window_ms);
  }
  v.quantiles = c.quantiles;
  return v;
}

size_t series_state::forget_inputs(int64_t cutoff_ms) {
  auto before = inputs.size();
  inputs.erase(std::remove_if(inputs.begin(), inputs.end(),
                              [&](const input_state& in) { return in.seen_ms < cutoff_ms; }),
               inputs.end());
  return before - inputs.size();
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
