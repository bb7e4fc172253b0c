#include "outputs/metrics_page.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <optional>

#include "keys/series_key.hpp"
#include "prometheus/exposition.hpp"
#include "prometheus/remote_write.hpp"
#include "rules/rule_set.hpp"

namespace tether::outputs {

namespace {

struct parsed_series {
  keys::parsed_key key;
  const series_view* view;
};

std::string strip_total(const std::string& name) {
  constexpr std::string_view suffix = "_total";
  if (name.size() > suffix.size()
      && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
    return name.substr(0, name.size() - suffix.size());
  return name;
}

/// Families are collected by name; their text and label storage must outlive the
/// writer call, so everything is owned here and the writer gets views.
class page_builder {
public:
  prom::family& family(const std::string& name, prom::family_type type,
                       const char* help) {
    auto it = index_.find(name);
    if (it != index_.end())
      return families_[it->second];
    names_.push_back(std::make_unique<std::string>(name));
    index_.emplace(name, families_.size());
    prom::family f;
    f.name = *names_.back();
    f.help = help;
    f.type = type;
    families_.push_back(std::move(f));
    return families_.back();
  }

  prom::point& point(prom::family& f, const parsed_series& p) {
    f.points.emplace_back();
    auto& pt = f.points.back();
    for (auto& [n, v] : p.key.labels)
      pt.labels.push_back(prom::label{n, v});
    return pt;
  }

  void gauge(const std::string& name, const char* help, const parsed_series& p,
             double v) {
    point(family(name, prom::family_type::gauge, help), p).value = v;
  }

  void counter(const std::string& name, const char* help, const parsed_series& p,
               double v) {
    point(family(name, prom::family_type::counter, help), p).value = v;
  }

  void summary(const std::string& name, const char* help, const parsed_series& p,
               const window_view& w) {
    auto& pt = point(family(name, prom::family_type::summary, help), p);
    for (auto& [q, x] : w.quantiles)
      pt.quantiles.push_back(prom::quantile_value{q, x});
    pt.sum = w.sum;
    pt.count = w.count;
  }

  bool write(std::string& out, std::string& error) {
    auto err = prom::write_exposition(families_, out);
    if (err) {
      error = err.message;
      return false;
    }
    return true;
  }

private:
  std::vector<std::unique_ptr<std::string>> names_;
  std::map<std::string, size_t> index_;
  std::vector<prom::family> families_;
};

template <class Visitor>
void map_series(const std::vector<parsed_series>& parsed, const rules::rule_set* rules,
                Visitor& out) {
  for (auto& p : parsed) {
    auto& v = *p.view;
    auto& w = v.window;
    const auto& name = p.key.name;
    const rules::rule* r = nullptr;
    if (rules != nullptr && v.rule > 0 && v.rule <= rules->rules().size())
      r = &rules->rules()[v.rule - 1];
    auto wants = [&](std::string_view output) { return !r || r->exports(output); };
    switch (v.kind) {
      case kind::counter: {
        auto base = strip_total(name);
        if (wants("total"))
          out.counter(base + "_total",
                      "Running total at the end of the latest closed window.", p,
                      w.total);
        if (wants("rate"))
          out.gauge(base + "_rate_over_window",
                    "Increase per second over the latest closed window.", p, w.rate);
        if (r && r->exports("increase") && !r->outputs.empty())
          out.gauge(base + "_increase_over_window",
                    "Increase over the latest closed window.", p, w.increase);
        break;
      }
      case kind::gauge:
        if (wants("last"))
          out.gauge(name, "Last value of the latest closed window.", p, w.last);
        if (wants("min"))
          out.gauge(name + "_min_over_window", "Minimum over the latest closed window.", p,
                    w.min);
        if (wants("max"))
          out.gauge(name + "_max_over_window", "Maximum over the latest closed window.", p,
                    w.max);
        if (wants("sum"))
          out.gauge(name + "_sum_over_window", "Sum over the latest closed window.", p,
                    w.sum);
        if (wants("count"))
          out.gauge(name + "_count_over_window", "Samples in the latest closed window.", p,
                    static_cast<double>(w.count));
        if (wants("mean"))
          out.gauge(name + "_avg_over_window", "Mean over the latest closed window.", p,
                    w.mean);
        break;
      case kind::histogram:
        if (wants("quantiles") || wants("sum") || wants("count"))
          out.summary(name, "Quantiles of the latest closed window.", p, w);
        if (wants("min"))
          out.gauge(name + "_min_over_window", "Minimum over the latest closed window.", p,
                    w.min);
        if (wants("max"))
          out.gauge(name + "_max_over_window", "Maximum over the latest closed window.", p,
                    w.max);
        break;
      default:
        break;
    }
  }
}

std::vector<parsed_series> parse_all(const std::vector<series_view>& series) {
  std::vector<parsed_series> parsed;
  parsed.reserve(series.size());
  for (auto& v : series) {
    parsed_series p;
    std::string err;
    if (keys::parse_key(v.key, p.key, err) != errc::none)
      continue;
    p.view = &v;
    parsed.push_back(std::move(p));
  }
  return parsed;
}

} // namespace

bool render_metrics(const std::vector<series_view>& series, const node_metrics& self,
                    const rules::rule_set* rules, std::string& out,
                    std::string& error) {
  auto parsed = parse_all(series);
  page_builder page;
  map_series(parsed, rules, page);
  // The node's own metrics, labelled with the node's name.
  parsed_series me;
  me.key.labels.emplace_back("node", self.node);
  page.counter("tether_samples_applied_total", "Samples applied by this node's slices.",
               me, static_cast<double>(self.samples_applied));
  page.counter("tether_samples_late_total",
               "Samples dropped because their window had closed.", me,
               static_cast<double>(self.samples_late));
  page.counter("tether_windows_closed_total", "Series windows closed and emitted.", me,
               static_cast<double>(self.windows_closed));
  page.counter("tether_batches_acked_total", "Write batches acknowledged.", me,
               static_cast<double>(self.batches_acked));
  page.counter("tether_near_answers_total",
               "Writes forwarded to a primary on another node that a follower here "
               "answered itself.",
               me, static_cast<double>(self.near_answers));
  std::vector<parsed_series> reasons(self.batches_rejected.size());
  for (size_t i = 0; i < reasons.size(); ++i) {
    reasons[i].key.labels.emplace_back("node", self.node);
    reasons[i].key.labels.emplace_back("reason", self.batches_rejected[i].first);
    page.counter("tether_batches_rejected_total", "Write batches refused, by reason.",
                 reasons[i], static_cast<double>(self.batches_rejected[i].second));
  }
  std::vector<parsed_series> slices(self.slice_series.size());
  for (size_t i = 0; i < slices.size(); ++i) {
    slices[i].key.labels.emplace_back("node", self.node);
    slices[i].key.labels.emplace_back("slice", std::to_string(self.slice_series[i].first));
    page.gauge("tether_slice_series", "Output series per slice served here.", slices[i],
               static_cast<double>(self.slice_series[i].second));
  }
  if (self.exporting) {
    page.gauge("tether_remote_write_queue_batches",
               "Remote-write batches waiting to be sent.", me,
               static_cast<double>(self.export_queue_depth));
    page.counter("tether_remote_write_sent_total", "Remote-write batches sent.", me,
                 static_cast<double>(self.export_sent));
    page.counter("tether_remote_write_dropped_total",
                 "Remote-write batches dropped (queue full or retries exhausted).", me,
                 static_cast<double>(self.export_dropped));
  }
  page.gauge("tether_series", "Output series held by this node.", me,
             static_cast<double>(self.series));
  page.gauge("tether_primary_slices", "Slices this node serves as primary.", me,
             static_cast<double>(self.primary_slices));
  return page.write(out, error);
}

namespace {

/// Collects the same outputs as the page, as remote-write series stamped with the
/// window's end. Owns every string and array the encoder views.
class remote_builder {
public:
  /// With `stale_at_ms`, every sample is a staleness marker stamped with it.
  explicit remote_builder(std::optional<int64_t> stale_at_ms = std::nullopt)
    : stale_at_ms_(stale_at_ms) {
  }

  void counter(const std::string& name, const char*, const parsed_series& p, double v) {
    add(name, p, v, prom::metric_type::counter, name);
  }

  void gauge(const std::string& name, const char*, const parsed_series& p, double v) {
    add(name, p, v, prom::metric_type::gauge, name);
  }

  void summary(const std::string& name, const char*, const parsed_series& p,
               const window_view& w) {
    for (auto& [q, x] : w.quantiles) {
      auto& e = add(name, p, x, prom::metric_type::summary, name);
      e.quantile = prom::format_value(q); // as on /metrics: "0.9", not "0.900000"
    }
    add(name + "_sum", p, w.sum, prom::metric_type::summary, name);
    add(name + "_count", p, static_cast<double>(w.count), prom::metric_type::summary,
        name);
  }

  bool encode(std::string& body, std::string& error) {
    std::vector<prom::series_view> series;
    series.reserve(entries_.size());
    for (auto& e : entries_) {
      e.labels.clear();
      for (auto& [n, v] : e.src->key.labels)
        e.labels.push_back(prom::label{n, v});
      if (!e.quantile.empty())
        e.labels.push_back(prom::label{"quantile", e.quantile});
      std::sort(e.labels.begin(), e.labels.end(),
                [](const prom::label& a, const prom::label& b) { return a.name < b.name; });
      series.push_back(prom::series_view{e.name, e.labels, {&e.sample, 1}});
    }
    std::vector<prom::family_metadata> meta;
    for (auto& [family, type] : types_)
      meta.push_back(prom::family_metadata{family, type, {}, {}});
    prom::write_encoder enc;
    auto res = enc.encode(series, meta, body);
    if (!res.ok()) {
      error = res.error.message;
      return false;
    }
    return true;
  }

private:
  struct entry {
    std::string name;
    const parsed_series* src;
    std::string quantile;
    prom::sample sample;
    std::vector<prom::label> labels;
  };

  entry& add(const std::string& name, const parsed_series& p, double v,
             prom::metric_type type, const std::string& family) {
    auto sample = stale_at_ms_ ? prom::sample{prom::stale_marker(), *stale_at_ms_}
                               : prom::sample{v, p.view->window.end_ms};
    entries_.push_back(entry{name, &p, {}, sample, {}});
    types_.emplace(family, type);
    return entries_.back();
  }

  std::optional<int64_t> stale_at_ms_;
  std::deque<entry> entries_; ///< stable: the encoder views their fields
  std::map<std::string, prom::metric_type> types_;
};

} // namespace

bool encode_windows(const std::vector<series_view>& series,
                    const rules::rule_set* rules, std::string& body,
                    std::string& error) {
  auto parsed = parse_all(series);
  remote_builder out;
  map_series(parsed, rules, out);
  return out.encode(body, error);
}

bool encode_stale_markers(const std::vector<series_view>& series,
                          const rules::rule_set* rules, int64_t now_ms,
                          std::string& body, std::string& error) {
  auto parsed = parse_all(series);
  remote_builder out{now_ms};
  map_series(parsed, rules, out);
  return out.encode(body, error);
}

} // namespace tether::outputs
