#include "prometheus/exposition.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "prometheus/text.hpp"

namespace tether::prom {

namespace {

using internal::append_double;

/// An extra label the writer adds to a line: `le` or `quantile`.
struct extra_label {
  std::string_view name;
  double value = 0;
};

std::string family_where(size_t index, const family& f) {
  std::string out = "family " + std::to_string(index);
  if (internal::valid_metric_name(f.name)) {
    out += " (";
    out += f.name;
    out += ')';
  }
  return out;
}

std::string point_where(size_t family_index, const family& f, size_t point) {
  return family_where(family_index, f) + ", point " + std::to_string(point)
         + ": ";
}

/// Appends `name<suffix>{labels}` and the space before the value.
void begin_line(std::string& out, std::string_view name, std::string_view suffix,
                const point& p, const extra_label* extra) {
  out += name;
  out += suffix;
  bool first = true;
  auto open = [&] {
    out += first ? '{' : ',';
    first = false;
  };
  for (auto& l : p.labels) {
    if (l.value.empty())
      continue;
    open();
    out += l.name;
    out += "=\"";
    internal::append_escaped_label_value(out, l.value);
    out += '"';
  }
  if (extra != nullptr) {
    open();
    out += extra->name;
    out += "=\"";
    append_double(out, extra->value);
    out += '"';
  }
  if (!first)
    out += '}';
  out += ' ';
}

void end_line(std::string& out, const point& p) {
  if (p.timestamp_ms) {
    out += ' ';
    internal::append_int(out, *p.timestamp_ms);
  }
  out += '\n';
}

/// Appends the identity of a point's label set: non-empty labels sorted by name,
/// each as name, NUL, value length, value (unambiguous for any value bytes).
void append_identity(std::string& key, std::vector<label>& sorted) {
  std::sort(sorted.begin(), sorted.end(),
            [](const label& x, const label& y) { return x.name < y.name; });
  for (auto& l : sorted) {
    if (l.value.empty())
      continue;
    key += l.name;
    key += '\0';
    auto n = l.value.size();
    char len[sizeof(n)];
    std::memcpy(len, &n, sizeof(n));
    key.append(len, sizeof(n));
    key += l.value;
  }
}

class checker {
public:
  prom::error check(array_view<family> families) {
    names_.clear();
    for (size_t i = 0; i < families.size(); ++i) {
      auto& f = families[i];
      if (f.points.empty())
        continue;
      if (!internal::valid_metric_name(f.name))
        return {errc::invalid_metric_name,
                family_where(i, f) + ": invalid metric name"};
      if (!internal::valid_utf8(f.help))
        return {errc::invalid_utf8, family_where(i, f) + ": help is not UTF-8"};
      names_.emplace_back(f.name, i);
      if (auto err = check_points(i, f))
        return err;
    }
    std::sort(names_.begin(), names_.end());
    if (auto dup = std::adjacent_find(
          names_.begin(), names_.end(),
          [](auto& x, auto& y) { return x.first == y.first; });
        dup != names_.end()) {
      auto later = std::next(dup)->second;
      return {errc::duplicate_family, family_where(later, families[later])
                                        + ": name already used by family "
                                        + std::to_string(dup->second)};
    }
    return {};
  }

private:
  prom::error check_points(size_t index, const family& f) {
    std::string_view reserved;
    if (f.type == family_type::histogram)
      reserved = "le";
    else if (f.type == family_type::summary)
      reserved = "quantile";
    identities_.clear();
    size_t used = 0;
    for (size_t j = 0; j < f.points.size(); ++j) {
      auto& p = f.points[j];
      auto where = [&] { return point_where(index, f, j); };
      for (auto& l : p.labels) {
        if (!internal::valid_label_name(l.name) || l.name == reserved)
          return {errc::invalid_label_name,
                  where() + "invalid or reserved label name"};
        if (!internal::valid_utf8(l.value))
          return {errc::invalid_utf8, where() + "label value is not UTF-8"};
      }
      sorted_.assign(p.labels.begin(), p.labels.end());
      if (used == identities_.size())
        identities_.emplace_back();
      auto& identity = identities_[used++];
      identity.first.clear();
      identity.second = j;
      append_identity(identity.first, sorted_);
      if (auto dup = std::adjacent_find(
            sorted_.begin(), sorted_.end(),
            [](auto& x, auto& y) { return x.name == y.name; });
          dup != sorted_.end())
        return {errc::duplicate_label, where() + "label \""
                                         + std::string{dup->name}
                                         + "\" occurs twice"};
      if (f.type == family_type::histogram) {
        if (auto err = check_buckets(p, where))
          return err;
      } else if (f.type == family_type::summary) {
        if (auto err = check_quantiles(p, where))
          return err;
      }
    }
    std::sort(identities_.begin(), identities_.begin() + used);
    for (size_t k = 1; k < used; ++k)
      if (identities_[k].first == identities_[k - 1].first) {
        auto a = identities_[k - 1].second;
        auto b = identities_[k].second;
        return {errc::duplicate_series,
                point_where(index, f, std::max(a, b))
                  + "same label set as point " + std::to_string(std::min(a, b))};
      }
    return {};
  }

  template <class Where>
  static prom::error check_buckets(const point& p, Where& where) {
    uint64_t total = 0;
    for (size_t k = 0; k < p.buckets.size(); ++k) {
      auto& b = p.buckets[k];
      bool last = k + 1 == p.buckets.size();
      bool ok_bound = std::isfinite(b.upper_bound)
                      || (last && b.upper_bound > 0 && std::isinf(b.upper_bound));
      if (!ok_bound || (k > 0 && !(p.buckets[k - 1].upper_bound < b.upper_bound)))
        return {errc::invalid_buckets,
                where() + "bucket bounds must be finite (the last may be +Inf) "
                          "and strictly ascending"};
      if (b.count > p.count - total)
        return {errc::invalid_buckets,
                where() + "buckets hold more observations than the count"};
      total += b.count;
      if (last && std::isinf(b.upper_bound) && total != p.count)
        return {errc::invalid_buckets,
                where() + "buckets up to +Inf do not add up to the count"};
    }
    return {};
  }

  template <class Where>
  static prom::error check_quantiles(const point& p, Where& where) {
    for (size_t k = 0; k < p.quantiles.size(); ++k) {
      auto q = p.quantiles[k].quantile;
      if (!(q >= 0 && q <= 1)
          || (k > 0 && !(p.quantiles[k - 1].quantile < q)))
        return {errc::invalid_quantiles,
                where() + "quantiles must lie in [0, 1] and be strictly ascending"};
    }
    return {};
  }

  std::vector<std::pair<std::string_view, size_t>> names_;
  std::vector<std::pair<std::string, size_t>> identities_;
  std::vector<label> sorted_;
};

void write_family(std::string& out, const family& f) {
  if (!f.help.empty()) {
    out += "# HELP ";
    out += f.name;
    out += ' ';
    internal::append_escaped_help(out, f.help);
    out += '\n';
  }
  out += "# TYPE ";
  out += f.name;
  out += ' ';
  out += to_string_view(f.type);
  out += '\n';
  for (auto& p : f.points) {
    switch (f.type) {
      case family_type::counter:
      case family_type::gauge:
      case family_type::untyped:
        begin_line(out, f.name, {}, p, nullptr);
        append_double(out, p.value);
        end_line(out, p);
        break;
      case family_type::histogram: {
        uint64_t cumulative = 0;
        for (auto& b : p.buckets) {
          if (std::isinf(b.upper_bound))
            break; // the +Inf line below covers it
          cumulative += b.count;
          extra_label le{"le", b.upper_bound};
          begin_line(out, f.name, "_bucket", p, &le);
          internal::append_uint(out, cumulative);
          end_line(out, p);
        }
        extra_label inf{"le", HUGE_VAL};
        begin_line(out, f.name, "_bucket", p, &inf);
        internal::append_uint(out, p.count);
        end_line(out, p);
        begin_line(out, f.name, "_sum", p, nullptr);
        append_double(out, p.sum);
        end_line(out, p);
        begin_line(out, f.name, "_count", p, nullptr);
        internal::append_uint(out, p.count);
        end_line(out, p);
        break;
      }
      case family_type::summary:
        for (auto& q : p.quantiles) {
          extra_label quantile{"quantile", q.quantile};
          begin_line(out, f.name, {}, p, &quantile);
          append_double(out, q.value);
          end_line(out, p);
        }
        begin_line(out, f.name, "_sum", p, nullptr);
        append_double(out, p.sum);
        end_line(out, p);
        begin_line(out, f.name, "_count", p, nullptr);
        internal::append_uint(out, p.count);
        end_line(out, p);
        break;
    }
  }
}

} // namespace

std::string_view to_string_view(family_type type) noexcept {
  switch (type) {
    case family_type::counter:
      return "counter";
    case family_type::gauge:
      return "gauge";
    case family_type::histogram:
      return "histogram";
    case family_type::summary:
      return "summary";
    case family_type::untyped:
      return "untyped";
  }
  return "untyped";
}

prom::error write_exposition(array_view<family> families, std::string& out) {
  checker check;
  if (auto err = check.check(families))
    return err;
  for (auto& f : families)
    if (!f.points.empty())
      write_family(out, f);
  return {};
}

std::string format_value(double value) {
  std::string out;
  append_double(out, value);
  return out;
}

} // namespace tether::prom
