#include "rules/rule_set.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <boost/json.hpp>
#include <re2/re2.h>

namespace tether::rules {

namespace json = boost::json;

namespace {

/// The RE2 pattern of a glob: `*` is any run, `?` any one character, and everything
/// else matches itself (QuoteMeta escapes whatever RE2 would read as syntax).
std::string glob_to_regex(std::string_view glob) {
  std::string out;
  size_t literal = 0; // start of the pending literal run
  auto flush = [&](size_t end) {
    if (end > literal)
      out += RE2::QuoteMeta(re2::StringPiece{glob.data() + literal, end - literal});
  };
  for (size_t i = 0; i < glob.size(); ++i) {
    if (glob[i] != '*' && glob[i] != '?')
      continue;
    flush(i);
    out += glob[i] == '*' ? ".*" : ".";
    literal = i + 1;
  }
  flush(glob.size());
  return out;
}

/// Memory one compiled regex may use, program and matching caches together: a pattern
/// whose program alone would not fit is refused; matching that outgrows the cache
/// falls back to RE2's slower automaton, still linear in the input.
constexpr int64_t regex_max_mem = int64_t{1} << 20;

/// Collects the first problem found while parsing, prefixed with the rule's name.
class parser {
public:
  explicit parser(std::string& error) : error_(error) {
  }

  bool fail(const std::string& where, const std::string& what) {
    if (error_.empty())
      error_ = where + ": " + what;
    return false;
  }

  bool string_of(const json::value& v, const std::string& where,
                 const char* field, std::string& out) {
    if (!v.is_string())
      return fail(where, std::string{"'"} + field + "' must be a string");
    out = std::string{v.get_string()};
    return true;
  }

  bool uint_of(const json::value& v, const std::string& where, const char* field,
               uint64_t lo, uint64_t hi, uint64_t& out) {
    if (v.is_int64() && v.get_int64() >= 0)
      out = static_cast<uint64_t>(v.get_int64());
    else if (v.is_uint64())
      out = v.get_uint64();
    else
      return fail(where, std::string{"'"} + field + "' must be a non-negative integer");
    if (out < lo || out > hi)
      return fail(where, std::string{"'"} + field + "' = " + std::to_string(out)
                           + " is out of bounds [" + std::to_string(lo) + ", "
                           + std::to_string(hi) + "]");
    return true;
  }

  /// Compiles `text` with RE2 (Prometheus' syntax; matching takes time linear in the
  /// input and no recursion), for anchored full matches.
  bool regex_of(const std::string& text, const std::string& where, const char* field,
                std::shared_ptr<const re2::RE2>& out) {
    RE2::Options options;
    options.set_log_errors(false); // the error goes into the message below
    options.set_max_mem(regex_max_mem);
    auto re = std::make_shared<const RE2>(text, options);
    if (!re->ok())
      return fail(where, std::string{"'"} + field + "' is not a valid regex: "
                           + re->error());
    out = std::move(re);
    return true;
  }

  bool label_list(const json::value& v, const std::string& where, const char* field,
                  std::vector<std::string>& out) {
    if (!v.is_array())
      return fail(where, std::string{"'"} + field + "' must be a list of label names");
    for (auto& x : v.get_array()) {
      std::string name;
      if (!string_of(x, where, field, name))
        return false;
      if (!keys::valid_label_name(name))
        return fail(where, std::string{"'"} + field + "' names an invalid label '"
                             + name + "'");
      out.push_back(std::move(name));
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return true;
  }

  bool matcher(const json::value& v, const std::string& where, label_matcher& m) {
    if (!v.is_object())
      return fail(where, "each 'where' entry must be an object {label, op, value}");
    std::string op = "=";
    for (auto& [k, x] : v.get_object()) {
      if (k == "label") {
        if (!string_of(x, where, "label", m.name))
          return false;
      } else if (k == "op") {
        if (!string_of(x, where, "op", op))
          return false;
      } else if (k == "value") {
        if (!string_of(x, where, "value", m.value))
          return false;
      } else {
        return fail(where, "unknown field '" + std::string{k} + "' in 'where'");
      }
    }
    if (!keys::valid_label_name(m.name))
      return fail(where, "'where' names an invalid label '" + m.name + "'");
    if (op == "=")
      m.op = match_op::eq;
    else if (op == "!=")
      m.op = match_op::ne;
    else if (op == "=~")
      m.op = match_op::re;
    else if (op == "!~")
      m.op = match_op::nre;
    else
      return fail(where, "unknown op '" + op + "' (use =, !=, =~ or !~)");
    if (m.op == match_op::re || m.op == match_op::nre)
      return regex_of(m.value, where, "where.value", m.re);
    return true;
  }

  bool rule_of(const json::value& v, size_t index, const rule_defaults& d, rule& r) {
    auto where = "rule " + std::to_string(index);
    if (!v.is_object())
      return fail(where, "must be an object");
    auto& o = v.get_object();
    if (auto* n = o.if_contains("name")) {
      if (!string_of(*n, where, "name", r.name))
        return false;
      if (r.name.empty())
        return fail(where, "'name' must not be empty");
      where += " ('" + r.name + "')";
    } else {
      return fail(where, "'name' is required");
    }
    r.window_ms = d.window_ms;
    r.quantiles = d.quantiles;
    r.max_input_series = d.max_input_series;
    int matches = 0;
    int selections = 0;
    for (auto& [k, x] : o) {
      if (k == "name") {
        continue;
      } else if (k == "match" || k == "match_glob" || k == "match_regex") {
        ++matches;
        std::string text;
        if (!string_of(x, where, k.data(), text))
          return false;
        if (k == "match") {
          if (!keys::valid_metric_name(text))
            return fail(where, "'match' is not a valid metric name: '" + text + "'");
          r.exact = true;
          r.metric = text;
        } else {
          r.exact = false;
          r.metric = text;
          if (!regex_of(k == "match_glob" ? glob_to_regex(text) : text, where,
                        k.data(), r.metric_re))
            return false;
        }
      } else if (k == "where") {
        if (!x.is_array())
          return fail(where, "'where' must be a list of matchers");
        for (auto& m : x.get_array()) {
          label_matcher lm;
          if (!matcher(m, where, lm))
            return false;
          r.matchers.push_back(std::move(lm));
        }
      } else if (k == "without" || k == "by") {
        ++selections;
        r.by = k == "by";
        if (!label_list(x, where, k.data(), r.labels))
          return false;
      } else if (k == "output") {
        if (!string_of(x, where, "output", r.output_name))
          return false;
        if (!keys::valid_metric_name(r.output_name))
          return fail(where, "'output' is not a valid metric name: '" + r.output_name
                               + "'");
      } else if (k == "window_ms") {
        uint64_t w = 0;
        if (!uint_of(x, where, "window_ms", 100, 86400000, w))
          return false;
        r.window_ms = static_cast<uint32_t>(w);
      } else if (k == "quantiles") {
        if (!x.is_array() || x.get_array().empty())
          return fail(where, "'quantiles' must be a non-empty list of numbers");
        r.quantiles.clear();
        for (auto& q : x.get_array()) {
          double d = q.is_double()   ? q.get_double()
                     : q.is_int64()  ? static_cast<double>(q.get_int64())
                     : q.is_uint64() ? static_cast<double>(q.get_uint64())
                                     : -1;
          if (!(d > 0 && d < 1))
            return fail(where, "'quantiles' must lie strictly between 0 and 1");
          r.quantiles.push_back(d);
        }
        std::sort(r.quantiles.begin(), r.quantiles.end());
        r.quantiles.erase(std::unique(r.quantiles.begin(), r.quantiles.end()),
                          r.quantiles.end());
      } else if (k == "outputs") {
        static const char* known[] = {"total", "rate",  "increase", "last",
                                      "min",   "max",   "sum",      "count",
                                      "mean",  "quantiles"};
        if (!x.is_array() || x.get_array().empty())
          return fail(where, "'outputs' must be a non-empty list of output names");
        for (auto& o : x.get_array()) {
          std::string name;
          if (!string_of(o, where, "outputs", name))
            return false;
          if (std::find_if(std::begin(known), std::end(known),
                           [&](const char* k) { return name == k; })
              == std::end(known))
            return fail(where, "unknown output '" + name
                                 + "' (use total, rate, increase, last, min, max, "
                                   "sum, count, mean, quantiles)");
          r.outputs.push_back(std::move(name));
        }
      } else if (k == "max_input_series") {
        if (!uint_of(x, where, "max_input_series", 0, uint64_t{1} << 40,
                     r.max_input_series))
          return false;
      } else {
        return fail(where, "unknown field '" + std::string{k} + "'");
      }
    }
    if (matches != 1)
      return fail(where, "needs exactly one of 'match', 'match_glob', 'match_regex'");
    if (selections > 1)
      return fail(where, "'by' and 'without' exclude each other");
    return true;
  }

private:
  std::string& error_;
};

} // namespace

bool label_matcher::matches(std::string_view actual) const {
  switch (op) {
    case match_op::eq:
      return actual == value;
    case match_op::ne:
      return actual != value;
    case match_op::re:
      return re && RE2::FullMatch(actual, *re);
    case match_op::nre:
      return !re || !RE2::FullMatch(actual, *re);
  }
  return false;
}

bool rule::exports(std::string_view name) const {
  return outputs.empty() || std::find(outputs.begin(), outputs.end(), name) != outputs.end();
}

bool rule::keeps(std::string_view label) const {
  bool listed = std::binary_search(labels.begin(), labels.end(), label);
  return by ? listed : !listed;
}

std::shared_ptr<const rule_set> rule_set::parse(std::string_view text,
                                                const rule_defaults& defaults,
                                                std::string& error) {
  error.clear();
  json::error_code ec;
  auto doc = json::parse(json::string_view{text.data(), text.size()}, ec);
  if (ec) {
    error = "rules: not valid JSON: " + ec.message();
    return nullptr;
  }
  parser p{error};
  if (!doc.is_object()) {
    p.fail("rules", "the document must be an object with a 'rules' list");
    return nullptr;
  }
  auto set = std::make_shared<rule_set>();
  set->defaults_ = defaults;
  for (auto& [k, v] : doc.get_object()) {
    if (k == "rules") {
      if (!v.is_array()) {
        p.fail("rules", "'rules' must be a list");
        return nullptr;
      }
      auto& arr = v.get_array();
      set->rules_.resize(arr.size());
      for (size_t i = 0; i < arr.size(); ++i) {
        if (!p.rule_of(arr[i], i, defaults, set->rules_[i]))
          return nullptr;
        set->rules_[i].index = static_cast<uint32_t>(i);
      }
    } else if (k == "max_input_series_per_node") {
      if (!p.uint_of(v, "rules", "max_input_series_per_node", 0, uint64_t{1} << 40,
                     set->max_input_series_per_node))
        return nullptr;
    } else {
      p.fail("rules", "unknown field '" + std::string{k} + "'");
      return nullptr;
    }
  }
  // Names must be unique: errors and metrics refer to rules by name.
  std::vector<std::pair<std::string, size_t>> names;
  for (auto& r : set->rules_)
    names.emplace_back(r.name, r.index);
  std::sort(names.begin(), names.end());
  for (size_t i = 1; i < names.size(); ++i)
    if (names[i].first == names[i - 1].first) {
      p.fail("rules", "rules " + std::to_string(names[i - 1].second) + " and "
                        + std::to_string(names[i].second) + " are both named '"
                        + names[i].first + "'");
      return nullptr;
    }
  for (auto& r : set->rules_) {
    if (!r.exact) {
      set->pattern_rules_.push_back(r.index);
      continue;
    }
    auto it = std::lower_bound(set->by_name_.begin(), set->by_name_.end(), r.metric,
                               [](const name_entry& e, const std::string& m) {
                                 return e.metric < m;
                               });
    if (it == set->by_name_.end() || it->metric != r.metric)
      it = set->by_name_.insert(it, name_entry{r.metric, {}});
    it->rules.push_back(r.index);
  }
  return set;
}

std::shared_ptr<const rule_set> rule_set::load(const std::string& path,
                                               const rule_defaults& defaults,
                                               std::string& error) {
  std::ifstream in{path};
  if (!in) {
    error = "rules: cannot read '" + path + "'";
    return nullptr;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return parse(buf.str(), defaults, error);
}

std::shared_ptr<const rule_set> rule_set::empty(const rule_defaults& defaults) {
  auto set = std::make_shared<rule_set>();
  set->defaults_ = defaults;
  return set;
}

const rule* rule_set::match(std::string_view metric, const keys::label_ref* labels,
                            size_t n) const {
  auto applies = [&](const rule& r) {
    for (auto& m : r.matchers) {
      std::string_view actual; // absent labels match as empty, as in PromQL
      for (size_t i = 0; i < n; ++i)
        if (labels[i].name == m.name) {
          actual = labels[i].value;
          break;
        }
      if (!m.matches(actual))
        return false;
    }
    return true;
  };
  const std::vector<uint32_t>* exact = nullptr;
  auto it = std::lower_bound(by_name_.begin(), by_name_.end(), metric,
                             [](const name_entry& e, std::string_view m) {
                               return e.metric < m;
                             });
  if (it != by_name_.end() && it->metric == metric)
    exact = &it->rules;
  // Merge the two ascending candidate lists; the first rule that applies wins.
  size_t i = 0;
  size_t j = 0;
  size_t ne = exact ? exact->size() : 0;
  while (i < ne || j < pattern_rules_.size()) {
    uint32_t next;
    bool from_exact = j >= pattern_rules_.size()
                      || (i < ne && (*exact)[i] < pattern_rules_[j]);
    if (from_exact) {
      next = (*exact)[i++];
    } else {
      next = pattern_rules_[j++];
      auto& r = rules_[next];
      if (!r.metric_re || !RE2::FullMatch(metric, *r.metric_re))
        continue;
    }
    if (applies(rules_[next]))
      return &rules_[next];
  }
  return nullptr;
}

size_t output_labels(const rule& r, const keys::label_ref* in, size_t n,
                     keys::label_ref* out) {
  size_t k = 0;
  for (size_t i = 0; i < n; ++i)
    if (r.keeps(in[i].name))
      out[k++] = in[i];
  return k;
}

} // namespace tether::rules
