#include "outputs/metrics_page.hpp"

#include <map>
#include <memory>

#include "keys/series_key.hpp"
#include "prometheus/exposition.hpp"

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

} // namespace

bool render_metrics(const std::vector<series_view>& series, const node_metrics& self,
                    std::string& out, std::string& error) {
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
  page_builder page;
  for (auto& p : parsed) {
    auto& v = *p.view;
    auto& w = v.window;
    const auto& name = p.key.name;
    switch (v.kind) {
      case kind::counter: {
        auto base = strip_total(name);
        page.point(page.family(base + "_total", prom::family_type::counter,
                               "Running total at the end of the latest closed window."),
                   p)
          .value = w.total;
        page.gauge(base + ":rate", "Increase per second over the latest closed window.",
                   p, w.rate);
        break;
      }
      case kind::gauge:
        page.gauge(name, "Last value of the latest closed window.", p, w.last);
        page.gauge(name + ":min", "Minimum over the latest closed window.", p, w.min);
        page.gauge(name + ":max", "Maximum over the latest closed window.", p, w.max);
        page.gauge(name + ":sum", "Sum over the latest closed window.", p, w.sum);
        page.gauge(name + ":count", "Samples in the latest closed window.", p,
                   static_cast<double>(w.count));
        page.gauge(name + ":mean", "Mean over the latest closed window.", p, w.mean);
        break;
      case kind::histogram: {
        auto& pt = page.point(page.family(name, prom::family_type::summary,
                                          "Quantiles of the latest closed window."),
                              p);
        for (auto& [q, x] : w.quantiles)
          pt.quantiles.push_back(prom::quantile_value{q, x});
        pt.sum = w.sum;
        pt.count = w.count;
        page.gauge(name + ":min", "Minimum over the latest closed window.", p, w.min);
        page.gauge(name + ":max", "Maximum over the latest closed window.", p, w.max);
        break;
      }
      default:
        break;
    }
  }
  // The node's own metrics, labelled with the node's name.
  parsed_series me;
  me.key.labels.emplace_back("node", self.node);
  page.point(page.family("tether_samples_applied_total", prom::family_type::counter,
                         "Samples applied by this node's slices."),
             me)
    .value = static_cast<double>(self.samples_applied);
  page.point(page.family("tether_samples_late_total", prom::family_type::counter,
                         "Samples dropped because their window had closed."),
             me)
    .value = static_cast<double>(self.samples_late);
  page.point(page.family("tether_windows_closed_total", prom::family_type::counter,
                         "Series windows closed and emitted."),
             me)
    .value = static_cast<double>(self.windows_closed);
  page.gauge("tether_series", "Output series held by this node.", me,
             static_cast<double>(self.series));
  page.gauge("tether_primary_slices", "Slices this node serves as primary.", me,
             static_cast<double>(self.primary_slices));
  return page.write(out, error);
}

} // namespace tether::outputs
