#include "rules/rule_set.hpp"

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "keys/series_key.hpp"
#include "tether/errc.hpp"

using namespace tether;
using namespace tether::rules;
using Catch::Matchers::Contains;
using keys::label_ref;

namespace {

/// Parses `json` and requires success.
std::shared_ptr<const rule_set> parse_ok(std::string_view json,
                                         const rule_defaults& defaults = {}) {
  std::string error = "stale error from an earlier call";
  auto set = rule_set::parse(json, defaults, error);
  INFO(json << "\n-> " << error);
  REQUIRE(set != nullptr);
  CHECK(error.empty());
  return set;
}

/// Parses `json`, requires failure and returns the error message.
std::string parse_error(std::string_view json, const rule_defaults& defaults = {}) {
  std::string error;
  auto set = rule_set::parse(json, defaults, error);
  INFO(json);
  CHECK(set == nullptr);
  CHECK_FALSE(error.empty());
  return error;
}

/// A document holding one rule: `name` plus the JSON members in `body`.
std::string one_rule(std::string_view name, std::string_view body) {
  return std::string{R"({"rules": [{"name": ")"} + std::string{name} + "\", "
         + std::string{body} + "}]}";
}

/// A document holding one rule `name` on metric "up" whose one 'where' entry is
/// `entry`.
std::string where_rule(std::string_view name, std::string_view entry) {
  return one_rule(name, R"("match": "up", "where": [)" + std::string{entry} + "]");
}

/// Normalises `labels` as the ingest path does and matches them.
const rule* match(const rule_set& set, std::string_view metric,
                  std::vector<label_ref> labels = {}) {
  size_t n = labels.size();
  auto check = keys::normalise_labels(labels.data(), n, 64);
  REQUIRE(check.code == errc::none);
  return set.match(metric, labels.data(), n);
}

/// The name of the rule `match` picks, or "<none>".
std::string matched(const rule_set& set, std::string_view metric,
                    std::vector<label_ref> labels = {}) {
  auto* r = match(set, metric, std::move(labels));
  return r ? r->name : "<none>";
}

/// The names `output_labels` keeps from sorted `in`, in output order.
std::vector<std::string> kept(const rule& r, const std::vector<label_ref>& in) {
  std::vector<label_ref> out(in.size());
  size_t n = output_labels(r, in.data(), in.size(), out.data());
  REQUIRE(n <= in.size());
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i)
    names.emplace_back(out[i].name);
  return names;
}

} // namespace

// -- parsing -------------------------------------------------------------------------

TEST_CASE("rule_set parses every field of a rule", "[rules][parse]") {
  auto set = parse_ok(R"({
    "max_input_series_per_node": 250000,
    "rules": [
      {
        "name": "http_by_job",
        "match": "http_requests_total",
        "where": [
          {"label": "env", "op": "=", "value": "prod"},
          {"label": "region", "op": "!=", "value": "eu"},
          {"label": "code", "op": "=~", "value": "5.."},
          {"label": "path", "op": "!~", "value": "/health.*"}
        ],
        "by": ["job", "code", "job"],
        "output": "http_requests:by_job",
        "window_ms": 60000,
        "quantiles": [0.99, 0.5, 0.75],
        "max_input_series": 5000
      },
      {"name": "api_glob", "match_glob": "api_*_seconds",
       "without": ["pod", "instance"]},
      {"name": "rpc_regex", "match_regex": "rpc_(client|server)_.*"}
    ]
  })");
  CHECK(set->max_input_series_per_node == 250000);
  REQUIRE(set->rules().size() == 3);

  auto& a = set->rules()[0];
  CHECK(a.name == "http_by_job");
  CHECK(a.index == 0);
  CHECK(a.exact);
  CHECK(a.metric == "http_requests_total");
  REQUIRE(a.matchers.size() == 4);
  CHECK(a.matchers[0].name == "env");
  CHECK(a.matchers[0].op == match_op::eq);
  CHECK(a.matchers[0].value == "prod");
  CHECK(a.matchers[1].name == "region");
  CHECK(a.matchers[1].op == match_op::ne);
  CHECK(a.matchers[1].value == "eu");
  CHECK(a.matchers[2].name == "code");
  CHECK(a.matchers[2].op == match_op::re);
  CHECK(a.matchers[2].value == "5..");
  CHECK(a.matchers[3].name == "path");
  CHECK(a.matchers[3].op == match_op::nre);
  CHECK(a.matchers[3].value == "/health.*");
  CHECK(a.by);
  CHECK(a.labels == std::vector<std::string>{"code", "job"}); // sorted, deduplicated
  CHECK(a.output_name == "http_requests:by_job");
  CHECK(a.window_ms == 60000);
  CHECK(a.quantiles == std::vector<double>{0.5, 0.75, 0.99}); // sorted
  CHECK(a.max_input_series == 5000);

  auto& b = set->rules()[1];
  CHECK(b.name == "api_glob");
  CHECK(b.index == 1);
  CHECK_FALSE(b.exact);
  CHECK(b.metric == "api_*_seconds");
  CHECK(b.matchers.empty());
  CHECK_FALSE(b.by);
  CHECK(b.labels == std::vector<std::string>{"instance", "pod"});
  CHECK(b.output_name.empty());

  auto& c = set->rules()[2];
  CHECK(c.name == "rpc_regex");
  CHECK(c.index == 2);
  CHECK_FALSE(c.exact);
  CHECK(c.metric == "rpc_(client|server)_.*");
  CHECK_FALSE(c.by);
  CHECK(c.labels.empty());
}

TEST_CASE("a 'where' entry without 'op' means equality", "[rules][parse]") {
  auto set = parse_ok(where_rule("r", R"({"label": "job", "value": "api"})"));
  REQUIRE(set->rules()[0].matchers.size() == 1);
  CHECK(set->rules()[0].matchers[0].op == match_op::eq);
  CHECK(matched(*set, "up", {{"job", "api"}}) == "r");
  CHECK(matched(*set, "up", {{"job", "web"}}) == "<none>");
}

TEST_CASE("rules inherit unset fields from rule_defaults", "[rules][parse]") {
  rule_defaults d;
  d.window_ms = 30000;
  d.quantiles = {0.25, 0.95};
  d.max_input_series = 777;
  auto set = parse_ok(R"({"rules": [
    {"name": "inherits", "match": "a"},
    {"name": "overrides", "match": "b", "window_ms": 500, "quantiles": [0.1],
     "max_input_series": 0}
  ]})",
                      d);
  auto& in = set->rules()[0];
  CHECK(in.window_ms == 30000);
  CHECK(in.quantiles == std::vector<double>{0.25, 0.95});
  CHECK(in.max_input_series == 777);
  auto& ov = set->rules()[1];
  CHECK(ov.window_ms == 500);
  CHECK(ov.quantiles == std::vector<double>{0.1});
  CHECK(ov.max_input_series == 0);
  CHECK(set->defaults().window_ms == 30000);
  CHECK(set->defaults().quantiles == std::vector<double>{0.25, 0.95});
  CHECK(set->defaults().max_input_series == 777);
  CHECK(set->max_input_series_per_node == 0);
}

TEST_CASE("the built-in defaults apply when rule_defaults is default-constructed",
          "[rules][parse]") {
  auto set = parse_ok(one_rule("r", R"("match": "up")"));
  auto& r = set->rules()[0];
  CHECK(r.window_ms == 10000);
  CHECK(r.quantiles == std::vector<double>{0.5, 0.9, 0.99});
  CHECK(r.max_input_series == 0);
}

TEST_CASE("an empty document and an empty rule list give a set that matches nothing",
          "[rules][parse]") {
  auto doc = GENERATE(as<std::string>{}, "{}", R"({"rules": []})",
                      R"({"max_input_series_per_node": 10})");
  auto set = parse_ok(doc);
  CHECK(set->rules().empty());
  CHECK(match(*set, "up") == nullptr);
}

TEST_CASE("window_ms accepts both ends of its bounds", "[rules][parse]") {
  auto low = parse_ok(one_rule("r", R"("match": "up", "window_ms": 100)"));
  CHECK(low->rules()[0].window_ms == 100);
  auto high = parse_ok(one_rule("r", R"("match": "up", "window_ms": 86400000)"));
  CHECK(high->rules()[0].window_ms == 86400000);
}

TEST_CASE("max_input_series accepts 2^40", "[rules][parse]") {
  auto set = parse_ok(R"({"max_input_series_per_node": 1099511627776,
    "rules": [{"name": "r", "match": "up", "max_input_series": 1099511627776}]})");
  CHECK(set->max_input_series_per_node == (uint64_t{1} << 40));
  CHECK(set->rules()[0].max_input_series == (uint64_t{1} << 40));
}

TEST_CASE("a successful parse clears an earlier error", "[rules][parse]") {
  std::string error = "left over";
  auto set = rule_set::parse(one_rule("r", R"("match": "up")"), {}, error);
  REQUIRE(set != nullptr);
  CHECK(error.empty());
}

// -- validation errors ---------------------------------------------------------------

TEST_CASE("parse rejects text that is not JSON", "[rules][errors]") {
  auto doc = GENERATE(as<std::string>{}, "", "{", R"({"rules": [)", "rules: []",
                      R"({"rules": [{"name": "a",}]})");
  CHECK_THAT(parse_error(doc), Contains("not valid JSON"));
}

TEST_CASE("parse rejects a document that is not an object with a rule list",
          "[rules][errors]") {
  SECTION("document is a list") {
    CHECK_THAT(parse_error(R"([{"name": "a", "match": "up"}])"),
               Contains("rules") && Contains("must be an object"));
  }
  SECTION("document is a string") {
    CHECK_THAT(parse_error(R"("rules")"), Contains("must be an object"));
  }
  SECTION("'rules' is an object") {
    CHECK_THAT(parse_error(R"({"rules": {"name": "a", "match": "up"}})"),
               Contains("'rules' must be a list"));
  }
}

TEST_CASE("parse rejects a rule that is not an object", "[rules][errors]") {
  auto err = parse_error(R"({"rules": [{"name": "a", "match": "up"}, "b"]})");
  CHECK_THAT(err, Contains("rule 1") && Contains("must be an object"));
}

TEST_CASE("parse requires a string name", "[rules][errors]") {
  SECTION("missing") {
    auto err = parse_error(R"({"rules": [{"name": "a", "match": "up"},
                                         {"match": "b"}]})");
    CHECK_THAT(err, Contains("rule 1") && Contains("'name' is required"));
  }
  SECTION("not a string") {
    auto err = parse_error(R"({"rules": [{"name": 7, "match": "up"}]})");
    CHECK_THAT(err, Contains("rule 0") && Contains("'name' must be a string"));
  }
}

TEST_CASE("parse requires exactly one match field", "[rules][errors]") {
  SECTION("none") {
    auto err = parse_error(one_rule("nomatch", R"("by": ["job"])"));
    CHECK_THAT(err, Contains("rule 0 ('nomatch')")
                      && Contains("needs exactly one of 'match', 'match_glob', "
                                  "'match_regex'"));
  }
  SECTION("match and match_glob") {
    auto err = parse_error(one_rule("two", R"("match": "up", "match_glob": "up*")"));
    CHECK_THAT(err, Contains("rule 0 ('two')") && Contains("needs exactly one of"));
  }
  SECTION("match_glob and match_regex") {
    auto err =
      parse_error(one_rule("two", R"("match_glob": "a*", "match_regex": "a.*")"));
    CHECK_THAT(err, Contains("rule 0 ('two')") && Contains("needs exactly one of"));
  }
  SECTION("all three") {
    auto err = parse_error(
      one_rule("three", R"("match": "a", "match_glob": "a*", "match_regex": "a.*")"));
    CHECK_THAT(err, Contains("rule 0 ('three')") && Contains("needs exactly one of"));
  }
  SECTION("match field is not a string") {
    auto err = parse_error(one_rule("num", R"("match": 5)"));
    CHECK_THAT(err, Contains("rule 0 ('num')") && Contains("'match' must be a string"));
  }
}

TEST_CASE("parse rejects invalid metric names in match and output", "[rules][errors]") {
  SECTION("match") {
    auto name =
      GENERATE(as<std::string>{}, "", "9lives", "http-requests", "a b", "dot.ted");
    auto err = parse_error(one_rule("bad", R"("match": ")" + name + "\""));
    CHECK_THAT(err,
               Contains("rule 0 ('bad')")
                 && Contains("'match' is not a valid metric name: '" + name + "'"));
  }
  SECTION("output") {
    auto err = parse_error(one_rule("bad", R"("match": "up", "output": "up-sum")"));
    CHECK_THAT(err, Contains("rule 0 ('bad')")
                      && Contains("'output' is not a valid metric name: 'up-sum'"));
  }
}

TEST_CASE("parse rejects invalid regexes", "[rules][errors]") {
  SECTION("match_regex") {
    auto re = GENERATE(as<std::string>{}, "(", "a[", "*a", "a{2,1}");
    auto err = parse_error(one_rule("bad_re", R"("match_regex": ")" + re + "\""));
    CHECK_THAT(err, Contains("rule 0 ('bad_re')")
                      && Contains("'match_regex' is not a valid regex"));
  }
  SECTION("where =~") {
    auto err = parse_error(
      where_rule("bad_re", R"({"label": "code", "op": "=~", "value": "(5"})"));
    CHECK_THAT(err, Contains("rule 0 ('bad_re')")
                      && Contains("'where.value' is not a valid regex"));
  }
  SECTION("where !~") {
    auto err = parse_error(
      where_rule("bad_re", R"({"label": "code", "op": "!~", "value": "[5"})"));
    CHECK_THAT(err, Contains("rule 0 ('bad_re')")
                      && Contains("'where.value' is not a valid regex"));
  }
  SECTION("the error is RE2's, after the field's name") {
    auto err = parse_error(one_rule("bad_re", R"("match_regex": "up(")"));
    CHECK_THAT(err, Contains("rule 0 ('bad_re'): 'match_regex' is not a valid regex: "
                             "missing ): up("));
  }
  SECTION("repetition counts above 1000 are refused") {
    // Also those of up to 9 digits, which libstdc++'s regex compiler read into a long
    // unchecked (found by tests/fuzz/rules), and nested counts whose product is over
    // 1000.
    auto re = GENERATE(as<std::string>{}, "a{1001}", "a{99999999}", "a{999999999}",
                       "a{1,999999999}", "a{1001,}", "(a{1000}){1000}",
                       "((a{100}){100}){100}");
    auto err = parse_error(one_rule("big", R"("match_regex": ")" + re + "\""));
    INFO(err);
    CHECK_THAT(err, Contains("'match_regex' is not a valid regex: invalid repetition "
                             "size"));
  }
  SECTION("a count RE2 cannot read as a number is literal text, not an overflow") {
    // 10 or more digits: RE2 reads the braces as text (Go's regexp refuses them).
    auto set = parse_ok(one_rule("lit", R"("match_regex": "a{88888888888888888888}")"));
    CHECK(matched(*set, "a{88888888888888888888}") == "lit");
    CHECK(matched(*set, "a") == "<none>");
  }
  SECTION("back-references are refused (RE2 has none, nor has Prometheus)") {
    auto re = GENERATE(as<std::string>{}, "(a)\\\\1", "a{1,2}(b)\\\\1x",
                       "a\\\\88888888888888888888");
    auto err = parse_error(one_rule("backref", R"("match_regex": ")" + re + "\""));
    INFO(err);
    CHECK_THAT(err, Contains("'match_regex' is not a valid regex: invalid escape "
                             "sequence: \\"));
  }
  SECTION("lookarounds are refused") {
    auto err = parse_error(
      where_rule("look", R"j({"label": "code", "op": "=~", "value": "5(?=0)"})j"));
    CHECK_THAT(err, Contains("'where.value' is not a valid regex"));
  }
  SECTION("a pattern whose program outgrows the memory bound is refused") {
    // \p{L} alone compiles to over a thousand instructions; 100 of them do not fit.
    auto err = parse_error(one_rule("huge", R"("match_regex": "\\p{L}{100}")"));
    CHECK_THAT(err, Contains("'match_regex' is not a valid regex: pattern too large"));
    parse_ok(one_rule("fits", R"("match_regex": "\\p{L}{10}")"));
  }
  SECTION("repetition counts and digits elsewhere stay valid") {
    auto set = parse_ok(one_rule("ok", R"("match_regex": "a{1,2}(b)x_1234567890")"));
    CHECK(matched(*set, "abx_1234567890", {}) == "ok");
    CHECK(matched(*set, "aabx_1234567890", {}) == "ok");
    CHECK(matched(*set, "aaabx_1234567890", {}) == "<none>");
  }
  SECTION("= and != take the value literally") {
    auto set =
      parse_ok(where_rule("lit", R"({"label": "code", "op": "=", "value": "(5"})"));
    CHECK(matched(*set, "up", {{"code", "(5"}}) == "lit");
    CHECK(matched(*set, "up", {{"code", "5"}}) == "<none>");
  }
}

TEST_CASE("glob special characters are escaped, not errors", "[rules][parse][glob]") {
  // Every regex metacharacter except * and ? must match itself.
  auto set = parse_ok(R"json({"rules": [
    {"name": "dot", "match_glob": "a.b"},
    {"name": "plus", "match_glob": "ab+"},
    {"name": "braces", "match_glob": "x{2}"},
    {"name": "anchors", "match_glob": "^up$"},
    {"name": "group", "match_glob": "(c|d)"},
    {"name": "class", "match_glob": "[ef]g"},
    {"name": "backslash", "match_glob": "\\d"},
    {"name": "open", "match_glob": "(["},
    {"name": "close", "match_glob": ")]}"}
  ]})json");
  CHECK(matched(*set, "a.b") == "dot");
  CHECK(matched(*set, "axb") == "<none>");
  CHECK(matched(*set, "ab+") == "plus");
  CHECK(matched(*set, "abb") == "<none>");
  CHECK(matched(*set, "x{2}") == "braces");
  CHECK(matched(*set, "xx") == "<none>");
  CHECK(matched(*set, "^up$") == "anchors");
  CHECK(matched(*set, "up") == "<none>");
  CHECK(matched(*set, "(c|d)") == "group");
  CHECK(matched(*set, "c") == "<none>");
  CHECK(matched(*set, "[ef]g") == "class");
  CHECK(matched(*set, "eg") == "<none>");
  CHECK(matched(*set, "\\d") == "backslash");
  CHECK(matched(*set, "7") == "<none>");
  CHECK(matched(*set, "([") == "open");
  CHECK(matched(*set, ")]}") == "close");
}

TEST_CASE("glob * matches any run and ? exactly one character", "[rules][glob]") {
  auto set = parse_ok(R"({"rules": [
    {"name": "q", "match_glob": "up?"},
    {"name": "star", "match_glob": "node_*_bytes"}
  ]})");
  CHECK(matched(*set, "up1") == "q");
  CHECK(matched(*set, "up") == "<none>");
  CHECK(matched(*set, "up12") == "<none>");
  CHECK(matched(*set, "node__bytes") == "star");
  CHECK(matched(*set, "node_memory_free_bytes") == "star");
  // Anchored at both ends.
  CHECK(matched(*set, "node_memory_free_bytes_total") == "<none>");
  CHECK(matched(*set, "xnode_a_bytes") == "<none>");
}

TEST_CASE("parse rejects unknown fields", "[rules][errors]") {
  SECTION("top level") {
    auto err = parse_error(R"({"rules": [], "rulez": []})");
    CHECK_THAT(err, Contains("rules") && Contains("unknown field 'rulez'"));
  }
  SECTION("in a rule") {
    auto err = parse_error(R"({"rules": [
      {"name": "a", "match": "up"},
      {"name": "b", "match": "up", "windw_ms": 5}
    ]})");
    CHECK_THAT(err, Contains("rule 1 ('b')") && Contains("unknown field 'windw_ms'"));
  }
  SECTION("in a where entry") {
    auto err = parse_error(where_rule("w", R"({"label": "job", "vale": "api"})"));
    CHECK_THAT(err,
               Contains("rule 0 ('w')") && Contains("unknown field 'vale' in 'where'"));
  }
}

TEST_CASE("parse rejects malformed where clauses", "[rules][errors]") {
  SECTION("unknown op") {
    auto op = GENERATE(as<std::string>{}, "==", "~=", "=!", "", "in");
    auto err = parse_error(
      where_rule("op", R"({"label": "job", "op": ")" + op + R"(", "value": "a"})"));
    CHECK_THAT(err, Contains("rule 0 ('op')") && Contains("unknown op '" + op + "'"));
  }
  SECTION("op is not a string") {
    auto err =
      parse_error(where_rule("op", R"({"label": "job", "op": 1, "value": "a"})"));
    CHECK_THAT(err, Contains("rule 0 ('op')") && Contains("'op' must be a string"));
  }
  SECTION("value is not a string") {
    auto err = parse_error(where_rule("v", R"({"label": "code", "value": 500})"));
    CHECK_THAT(err, Contains("rule 0 ('v')") && Contains("'value' must be a string"));
  }
  SECTION("where is not a list") {
    auto err = parse_error(
      one_rule("w", R"("match": "up", "where": {"label": "job", "value": "a"})"));
    CHECK_THAT(err, Contains("rule 0 ('w')") && Contains("'where' must be a list"));
  }
  SECTION("where entry is not an object") {
    auto err = parse_error(one_rule("w", R"("match": "up", "where": ["job=a"])"));
    CHECK_THAT(err, Contains("rule 0 ('w')") && Contains("must be an object"));
  }
}

TEST_CASE("parse rejects invalid label names", "[rules][errors]") {
  auto label = GENERATE(as<std::string>{}, "1x", "a-b", "__name__", "");
  SECTION("by") {
    auto err =
      parse_error(one_rule("lbl", R"("match": "up", "by": ["job", ")" + label + "\"]"));
    CHECK_THAT(err, Contains("rule 0 ('lbl')")
                      && Contains("'by' names an invalid label '" + label + "'"));
  }
  SECTION("without") {
    auto err =
      parse_error(one_rule("lbl", R"("match": "up", "without": [")" + label + "\"]"));
    CHECK_THAT(err, Contains("rule 0 ('lbl')")
                      && Contains("'without' names an invalid label '" + label + "'"));
  }
  SECTION("where") {
    auto err =
      parse_error(where_rule("lbl", R"({"label": ")" + label + R"(", "value": "x"})"));
    CHECK_THAT(err, Contains("rule 0 ('lbl')")
                      && Contains("'where' names an invalid label '" + label + "'"));
  }
}

TEST_CASE("parse rejects malformed label lists", "[rules][errors]") {
  SECTION("by is not a list") {
    auto err = parse_error(one_rule("l", R"("match": "up", "by": "job")"));
    CHECK_THAT(err, Contains("rule 0 ('l')")
                      && Contains("'by' must be a list of label names"));
  }
  SECTION("without holds a number") {
    auto err = parse_error(one_rule("l", R"("match": "up", "without": ["a", 3])"));
    CHECK_THAT(err, Contains("rule 0 ('l')") && Contains("'without' must be a string"));
  }
}

TEST_CASE("parse rejects by and without together", "[rules][errors]") {
  auto body = GENERATE(as<std::string>{},
                       R"("match": "up", "by": ["job"], "without": ["pod"])",
                       R"("without": [], "match": "up", "by": [])");
  auto err = parse_error(one_rule("both", body));
  CHECK_THAT(err, Contains("rule 0 ('both')")
                    && Contains("'by' and 'without' exclude each other"));
}

TEST_CASE("parse rejects window_ms out of bounds or not an integer",
          "[rules][errors]") {
  SECTION("out of bounds") {
    auto w = GENERATE(as<std::string>{}, "0", "99", "86400001", "18446744073709551615");
    auto err = parse_error(one_rule("win", R"("match": "up", "window_ms": )" + w));
    CHECK_THAT(err, Contains("rule 0 ('win')")
                      && Contains("'window_ms' = " + w
                                  + " is out of bounds [100, 86400000]"));
  }
  SECTION("not a non-negative integer") {
    auto w = GENERATE(as<std::string>{}, "-1000", "1000.5", "\"1000\"", "null", "true");
    auto err = parse_error(one_rule("win", R"("match": "up", "window_ms": )" + w));
    CHECK_THAT(err, Contains("rule 0 ('win')")
                      && Contains("'window_ms' must be a non-negative integer"));
  }
}

TEST_CASE("parse rejects max_input_series limits out of bounds", "[rules][errors]") {
  SECTION("per rule") {
    auto err = parse_error(
      one_rule("cap", R"("match": "up", "max_input_series": 1099511627777)"));
    CHECK_THAT(err,
               Contains("rule 0 ('cap')")
                 && Contains("'max_input_series' = 1099511627777 is out of bounds"));
  }
  SECTION("per rule, negative") {
    auto err = parse_error(one_rule("cap", R"("match": "up", "max_input_series": -1)"));
    CHECK_THAT(err, Contains("rule 0 ('cap')")
                      && Contains("'max_input_series' must be a non-negative integer"));
  }
  SECTION("per node") {
    auto err =
      parse_error(R"({"max_input_series_per_node": 1099511627777, "rules": []})");
    CHECK_THAT(err, Contains("'max_input_series_per_node' = 1099511627777 is out of "
                             "bounds"));
  }
  SECTION("per node, not a number") {
    auto err = parse_error(R"({"max_input_series_per_node": "many", "rules": []})");
    CHECK_THAT(err, Contains("'max_input_series_per_node' must be a non-negative "
                             "integer"));
  }
}

TEST_CASE("parse rejects quantiles outside (0, 1), empty or not numbers",
          "[rules][errors]") {
  SECTION("out of range") {
    auto q = GENERATE(as<std::string>{}, "[0]", "[1]", "[0.0]", "[1.0]", "[-0.5]",
                      "[1.5]", "[0.5, 1]", "[0.5, \"0.9\"]", "[null]");
    auto err = parse_error(one_rule("q", R"("match": "up", "quantiles": )" + q));
    CHECK_THAT(err, Contains("rule 0 ('q')")
                      && Contains("'quantiles' must lie strictly between 0 and 1"));
  }
  SECTION("empty or not a list") {
    auto q = GENERATE(as<std::string>{}, "[]", "0.5", "\"0.5\"");
    auto err = parse_error(one_rule("q", R"("match": "up", "quantiles": )" + q));
    CHECK_THAT(err, Contains("rule 0 ('q')")
                      && Contains("'quantiles' must be a non-empty list of numbers"));
  }
}

TEST_CASE("parse rejects duplicate rule names", "[rules][errors]") {
  auto err = parse_error(R"({"rules": [
    {"name": "dup", "match": "a"},
    {"name": "other", "match": "b"},
    {"name": "dup", "match_glob": "c*"}
  ]})");
  CHECK_THAT(err, Contains("rules 0 and 2 are both named 'dup'"));
}

TEST_CASE("parse reports the first failing rule by index and name", "[rules][errors]") {
  auto err = parse_error(R"({"rules": [
    {"name": "ok0", "match": "a"},
    {"name": "ok1", "match_glob": "b*"},
    {"name": "third", "match": "c", "window_ms": 1},
    {"name": "fourth", "match": "d", "quantiles": []}
  ]})");
  CHECK_THAT(err, Contains("rule 2 ('third')") && Contains("window_ms"));
  CHECK_THAT(err, !Contains("fourth") && !Contains("quantiles"));
}

// -- matching ------------------------------------------------------------------------

TEST_CASE("match returns nullptr when no rule matches", "[rules][match]") {
  auto set = parse_ok(R"({"rules": [
    {"name": "exact", "match": "up"},
    {"name": "glob", "match_glob": "node_*"},
    {"name": "regex", "match_regex": "rpc_.*"}
  ]})");
  CHECK(match(*set, "down") == nullptr);
  CHECK(match(*set, "upx") == nullptr);
  CHECK(match(*set, "u") == nullptr);
  CHECK(match(*set, "") == nullptr);
  CHECK(match(*set, "xnode_a") == nullptr);
  CHECK(match(*set, "grpc_calls") == nullptr); // match_regex is anchored too
  CHECK(matched(*set, "up") == "exact");
  CHECK(matched(*set, "node_load1") == "glob");
  CHECK(matched(*set, "rpc_calls") == "regex");
}

TEST_CASE("match returns a pointer into rules()", "[rules][match]") {
  auto set = parse_ok(R"({"rules": [
    {"name": "a", "match": "x"},
    {"name": "b", "match_glob": "y*"}
  ]})");
  CHECK(match(*set, "x") == &set->rules()[0]);
  CHECK(match(*set, "yz") == &set->rules()[1]);
}

TEST_CASE("the first matching rule in document order wins", "[rules][match]") {
  SECTION("a glob rule listed before an exact rule wins for its metrics") {
    auto set = parse_ok(R"({"rules": [
      {"name": "all_http", "match_glob": "http_*"},
      {"name": "requests", "match": "http_requests_total"},
      {"name": "up", "match": "up"}
    ]})");
    CHECK(matched(*set, "http_requests_total") == "all_http");
    CHECK(matched(*set, "up") == "up");
  }
  SECTION("an exact rule listed before a glob rule wins") {
    auto set = parse_ok(R"({"rules": [
      {"name": "requests", "match": "http_requests_total"},
      {"name": "all_http", "match_glob": "http_*"}
    ]})");
    CHECK(matched(*set, "http_requests_total") == "requests");
    CHECK(matched(*set, "http_errors_total") == "all_http");
  }
  SECTION("regex and glob rules in order") {
    auto set = parse_ok(R"({"rules": [
      {"name": "re", "match_regex": "api_(get|put)_.*"},
      {"name": "glob", "match_glob": "api_*"}
    ]})");
    CHECK(matched(*set, "api_get_seconds") == "re");
    CHECK(matched(*set, "api_post_seconds") == "glob");
  }
  SECTION("two exact rules for one metric") {
    auto set = parse_ok(R"({"rules": [
      {"name": "first", "match": "up"},
      {"name": "second", "match": "up"}
    ]})");
    CHECK(matched(*set, "up") == "first");
  }
  SECTION("exact and pattern rules interleaved") {
    auto set = parse_ok(R"({"rules": [
      {"name": "e0", "match": "m", "where": [{"label": "k", "value": "0"}]},
      {"name": "p1", "match_glob": "m*", "where": [{"label": "k", "value": "1"}]},
      {"name": "e2", "match": "m", "where": [{"label": "k", "value": "2"}]},
      {"name": "p3", "match_regex": "m", "where": [{"label": "k", "value": "3"}]},
      {"name": "e4", "match": "m"},
      {"name": "p5", "match_glob": "*"}
    ]})");
    CHECK(matched(*set, "m", {{"k", "0"}}) == "e0");
    CHECK(matched(*set, "m", {{"k", "1"}}) == "p1");
    CHECK(matched(*set, "m", {{"k", "2"}}) == "e2");
    CHECK(matched(*set, "m", {{"k", "3"}}) == "p3");
    CHECK(matched(*set, "m", {{"k", "4"}}) == "e4");
    CHECK(matched(*set, "m") == "e4");
    CHECK(matched(*set, "n", {{"k", "0"}}) == "p5");
  }
}

TEST_CASE("a rule whose matchers fail falls through to the next", "[rules][match]") {
  auto set = parse_ok(R"({"rules": [
    {"name": "errors", "match": "http_requests_total",
     "where": [{"label": "code", "op": "=~", "value": "5.."}]},
    {"name": "prod_http", "match_glob": "http_*",
     "where": [{"label": "env", "value": "prod"}]},
    {"name": "requests", "match": "http_requests_total"}
  ]})");
  CHECK(matched(*set, "http_requests_total", {{"code", "503"}}) == "errors");
  CHECK(matched(*set, "http_requests_total", {{"code", "200"}, {"env", "prod"}})
        == "prod_http");
  CHECK(matched(*set, "http_requests_total", {{"code", "200"}, {"env", "dev"}})
        == "requests");
  CHECK(matched(*set, "http_errors_total", {{"env", "dev"}}) == "<none>");
}

TEST_CASE("label matchers follow PromQL semantics", "[rules][match]") {
  auto rule_with = [](std::string_view op, std::string_view value) {
    return parse_ok(one_rule("r", R"("match": "m", "where": [{"label": "l", "op": ")"
                                    + std::string{op} + R"(", "value": ")"
                                    + std::string{value} + "\"}]"));
  };
  SECTION("= compares the whole value") {
    auto set = rule_with("=", "prod");
    CHECK(matched(*set, "m", {{"l", "prod"}}) == "r");
    CHECK(matched(*set, "m", {{"l", "production"}}) == "<none>");
    CHECK(matched(*set, "m", {{"l", "Prod"}}) == "<none>");
    CHECK(matched(*set, "m") == "<none>");
    CHECK(matched(*set, "m", {{"other", "prod"}}) == "<none>");
  }
  SECTION("!= matches a different or absent value") {
    auto set = rule_with("!=", "prod");
    CHECK(matched(*set, "m", {{"l", "prod"}}) == "<none>");
    CHECK(matched(*set, "m", {{"l", "dev"}}) == "r");
    CHECK(matched(*set, "m") == "r");
  }
  SECTION("an absent label matches as the empty string") {
    auto eq = rule_with("=", "");
    CHECK(matched(*eq, "m") == "r");
    CHECK(matched(*eq, "m", {{"other", "x"}}) == "r");
    CHECK(matched(*eq, "m", {{"l", ""}}) == "r"); // empty values are dropped as absent
    CHECK(matched(*eq, "m", {{"l", "x"}}) == "<none>");
    auto ne = rule_with("!=", "");
    CHECK(matched(*ne, "m") == "<none>");
    CHECK(matched(*ne, "m", {{"l", ""}}) == "<none>");
    CHECK(matched(*ne, "m", {{"l", "x"}}) == "r");
    auto re = rule_with("=~", ".*");
    CHECK(matched(*re, "m") == "r");
    auto re_plus = rule_with("=~", ".+");
    CHECK(matched(*re_plus, "m") == "<none>");
    CHECK(matched(*re_plus, "m", {{"l", "x"}}) == "r");
  }
  SECTION("=~ is anchored at both ends") {
    auto set = rule_with("=~", "5..");
    CHECK(matched(*set, "m", {{"l", "500"}}) == "r");
    CHECK(matched(*set, "m", {{"l", "503"}}) == "r");
    CHECK(matched(*set, "m", {{"l", "1500"}}) == "<none>");
    CHECK(matched(*set, "m", {{"l", "5000"}}) == "<none>");
    CHECK(matched(*set, "m", {{"l", "50"}}) == "<none>");
    CHECK(matched(*set, "m") == "<none>");
  }
  SECTION("=~ anchors the whole alternation") {
    auto set = rule_with("=~", "get|put");
    CHECK(matched(*set, "m", {{"l", "get"}}) == "r");
    CHECK(matched(*set, "m", {{"l", "put"}}) == "r");
    CHECK(matched(*set, "m", {{"l", "getput"}}) == "<none>");
    CHECK(matched(*set, "m", {{"l", "forget"}}) == "<none>");
    auto prefix = rule_with("=~", "1|10");
    CHECK(matched(*prefix, "m", {{"l", "10"}}) == "r");
  }
  SECTION("!~ is the anchored negation") {
    auto set = rule_with("!~", "5..");
    CHECK(matched(*set, "m", {{"l", "500"}}) == "<none>");
    CHECK(matched(*set, "m", {{"l", "1500"}}) == "r");
    CHECK(matched(*set, "m", {{"l", "200"}}) == "r");
    CHECK(matched(*set, "m") == "r");
  }
  SECTION("all matchers of a rule must hold") {
    auto set = parse_ok(one_rule("r", R"("match": "m", "where": [
      {"label": "env", "value": "prod"},
      {"label": "code", "op": "=~", "value": "5.."},
      {"label": "path", "op": "!~", "value": "/health.*"}
    ])"));
    CHECK(matched(*set, "m", {{"env", "prod"}, {"code", "500"}, {"path", "/api"}})
          == "r");
    CHECK(matched(*set, "m", {{"env", "prod"}, {"code", "500"}}) == "r");
    CHECK(matched(*set, "m", {{"env", "prod"}, {"code", "500"}, {"path", "/healthz"}})
          == "<none>");
    CHECK(matched(*set, "m", {{"env", "dev"}, {"code", "500"}}) == "<none>");
    CHECK(matched(*set, "m", {{"env", "prod"}, {"code", "200"}}) == "<none>");
  }
}

TEST_CASE("label_matcher::matches compares the given value", "[rules][match]") {
  auto set = parse_ok(one_rule("r", R"("match": "m", "where": [
    {"label": "a", "op": "=", "value": "x"},
    {"label": "b", "op": "!=", "value": "x"},
    {"label": "c", "op": "=~", "value": "x+"},
    {"label": "d", "op": "!~", "value": "x+"}
  ])"));
  auto& m = set->rules()[0].matchers;
  REQUIRE(m.size() == 4);
  CHECK(m[0].matches("x"));
  CHECK_FALSE(m[0].matches("xx"));
  CHECK_FALSE(m[1].matches("x"));
  CHECK(m[1].matches(""));
  CHECK(m[2].matches("xxx"));
  CHECK_FALSE(m[2].matches("xy"));
  CHECK_FALSE(m[2].matches(""));
  CHECK_FALSE(m[3].matches("xxx"));
  CHECK(m[3].matches("xy"));
  CHECK(m[3].matches(""));
}

TEST_CASE("regexes match long values without backtracking", "[rules][match]") {
  // Patterns a backtracking matcher takes exponential time on (libstdc++'s std::regex
  // never finished these, and recursed once per character of the value: a 1 MiB value
  // overflowed its stack). RE2 answers in time linear in the value; this checks the
  // answers. The values are longer than the node's default key limit on purpose: the
  // matcher must not rely on it.
  auto rule_with = [](std::string_view op, std::string_view value) {
    return parse_ok(one_rule("r", R"("match": "m", "where": [{"label": "l", "op": ")"
                                    + std::string{op} + R"(", "value": ")"
                                    + std::string{value} + "\"}]"));
  };
  const std::string as(5000, 'a');
  const std::string xs(5000, 'x');
  SECTION("(a|aa)*c") {
    auto set = rule_with("=~", "(a|aa)*c");
    CHECK(matched(*set, "m", {{"l", as}}) == "<none>");
    CHECK(matched(*set, "m", {{"l", as + "c"}}) == "r");
    CHECK(matched(*set, "m", {{"l", as + "b"}}) == "<none>");
    auto negated = rule_with("!~", "(a|aa)*c");
    CHECK(matched(*negated, "m", {{"l", as}}) == "r");
    CHECK(matched(*negated, "m", {{"l", as + "c"}}) == "<none>");
  }
  SECTION("(x+x+)+y") {
    auto set = rule_with("=~", "(x+x+)+y");
    CHECK(matched(*set, "m", {{"l", xs}}) == "<none>");
    CHECK(matched(*set, "m", {{"l", xs + "y"}}) == "r");
    CHECK(matched(*set, "m", {{"l", "xy"}}) == "<none>"); // x+x+ needs two
  }
  SECTION(".* and a nested star on a 1 MiB value") {
    const std::string big(std::size_t{1} << 20, 'a');
    auto any = rule_with("=~", ".*");
    CHECK(matched(*any, "m", {{"l", big}}) == "r");
    auto nested = rule_with("=~", "(a*)*b");
    CHECK(matched(*nested, "m", {{"l", big}}) == "<none>");
    CHECK(matched(*nested, "m", {{"l", big + "b"}}) == "r");
    auto& m = any->rules()[0].matchers;
    REQUIRE(m.size() == 1);
    CHECK(m[0].matches(big));
    CHECK(m[0].matches(big + "\xc3\xa9"));
    CHECK_FALSE(m[0].matches(big + "\n")); // . is any character but a newline
  }
  SECTION("a metric regex on a long name") {
    auto set = parse_ok(one_rule("r", R"("match_regex": "(a|aa)*c")"));
    CHECK(matched(*set, as) == "<none>");
    CHECK(matched(*set, as + "c") == "r");
  }
}

// -- output labels -------------------------------------------------------------------

TEST_CASE("output_labels keeps the 'by' labels in sorted order", "[rules][output]") {
  auto set =
    parse_ok(one_rule("r", R"("match": "m", "by": ["path", "code", "absent"])"));
  auto& r = set->rules()[0];
  std::vector<label_ref> in{{"code", "500"},
                            {"instance", "a:1"},
                            {"job", "api"},
                            {"path", "/x"},
                            {"pod", "p1"}};
  CHECK(kept(r, in) == std::vector<std::string>{"code", "path"});
  CHECK(r.keeps("code"));
  CHECK(r.keeps("absent"));
  CHECK_FALSE(r.keeps("job"));
  CHECK(kept(r, {}).empty());
  CHECK(kept(r, {{"job", "api"}}).empty());

  // The values travel with their names.
  std::vector<label_ref> out(in.size());
  REQUIRE(output_labels(r, in.data(), in.size(), out.data()) == 2);
  CHECK(out[0].value == "500");
  CHECK(out[1].value == "/x");
}

TEST_CASE("output_labels drops the 'without' labels and keeps the rest in order",
          "[rules][output]") {
  auto set = parse_ok(one_rule("r", R"("match": "m", "without": ["pod", "instance"])"));
  auto& r = set->rules()[0];
  std::vector<label_ref> in{{"code", "500"},
                            {"instance", "a:1"},
                            {"job", "api"},
                            {"path", "/x"},
                            {"pod", "p1"}};
  CHECK(kept(r, in) == std::vector<std::string>{"code", "job", "path"});
  CHECK_FALSE(r.keeps("pod"));
  CHECK(r.keeps("zone"));
}

TEST_CASE("output_labels keeps every label without by or without", "[rules][output]") {
  auto body =
    GENERATE(as<std::string>{}, R"("match": "m")", R"("match": "m", "without": [])");
  auto set = parse_ok(one_rule("r", body));
  std::vector<label_ref> in{{"a", "1"}, {"b", "2"}, {"c", "3"}};
  CHECK(kept(set->rules()[0], in) == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("output_labels with an empty 'by' keeps nothing", "[rules][output]") {
  auto set = parse_ok(one_rule("r", R"("match": "m", "by": [])"));
  CHECK(kept(set->rules()[0], {{"a", "1"}, {"b", "2"}}).empty());
}

// -- load and empty ------------------------------------------------------------------

TEST_CASE("load reads and parses a rules file", "[rules][load]") {
  auto path = std::filesystem::temp_directory_path()
              / ("tether_rule_set_test_" + std::to_string(::getpid()) + ".json");
  {
    std::ofstream out{path};
    out << R"({"max_input_series_per_node": 9,
               "rules": [{"name": "f", "match": "up"}]})";
  }
  std::string error;
  auto set = rule_set::load(path.string(), {}, error);
  std::filesystem::remove(path);
  INFO(error);
  REQUIRE(set != nullptr);
  CHECK(set->max_input_series_per_node == 9);
  CHECK(matched(*set, "up") == "f");
}

TEST_CASE("load of a missing file names the path", "[rules][load]") {
  auto file = "tether_rule_set_test_missing_" + std::to_string(::getpid()) + ".json";
  auto path = (std::filesystem::temp_directory_path() / file).string();
  std::string error;
  auto set = rule_set::load(path, {}, error);
  CHECK(set == nullptr);
  CHECK_THAT(error, Contains("'" + path + "'"));
}

TEST_CASE("load reports parse errors of the file's contents", "[rules][load]") {
  auto path = std::filesystem::temp_directory_path()
              / ("tether_rule_set_test_bad_" + std::to_string(::getpid()) + ".json");
  {
    std::ofstream out{path};
    out << R"({"rules": [
      {"name": "f", "match": "up", "by": ["a"], "without": ["b"]}
    ]})";
  }
  std::string error;
  auto set = rule_set::load(path.string(), {}, error);
  std::filesystem::remove(path);
  CHECK(set == nullptr);
  CHECK_THAT(error, Contains("rule 0 ('f')") && Contains("exclude each other"));
}

TEST_CASE("the empty rule set matches nothing and keeps its defaults", "[rules]") {
  rule_defaults d;
  d.window_ms = 2500;
  d.quantiles = {0.5};
  d.max_input_series = 3;
  auto set = rule_set::empty(d);
  REQUIRE(set != nullptr);
  CHECK(set->rules().empty());
  CHECK(set->max_input_series_per_node == 0);
  CHECK(set->defaults().window_ms == 2500);
  CHECK(set->defaults().quantiles == std::vector<double>{0.5});
  CHECK(set->defaults().max_input_series == 3);
  CHECK(match(*set, "up") == nullptr);
  CHECK(match(*set, "http_requests_total", {{"job", "api"}}) == nullptr);
  CHECK(match(*set, "") == nullptr);
}

// -- scale ---------------------------------------------------------------------------

namespace {

/// A shell-style wildcard match, written independently of rule_set's glob compiler.
bool wildcard(std::string_view pattern, std::string_view text) {
  if (pattern.empty())
    return text.empty();
  if (pattern[0] == '*')
    return wildcard(pattern.substr(1), text)
           || (!text.empty() && wildcard(pattern, text.substr(1)));
  if (text.empty())
    return false;
  return (pattern[0] == '?' || pattern[0] == text[0])
         && wildcard(pattern.substr(1), text.substr(1));
}

/// The test's own description of one rule, used by the reference scan.
struct model_rule {
  bool glob = false;
  std::string pattern;
  std::string label;                          ///< empty: no matcher
  std::function<bool(std::string_view)> test; ///< applied to the label's value
  std::string where_json;
};

} // namespace

TEST_CASE("match agrees with a linear scan over 1000 exact and 20 glob rules",
          "[rules][match][scale]") {
  std::mt19937 rng{20240611};
  auto pick = [&](unsigned n) { return static_cast<unsigned>(rng() % n); };

  // 1000 exact rules over 700 metric names (m_0 to m_299 carry two rules each), some
  // conditioned on a label, with 20 glob rules spread among them, the broadest last.
  const std::vector<std::string> globs{
    "m_?5",     "other_1?", "q_??", "m_2?",  "*x*",
    "m_3*0",    "q_*7",     "m_?",  "*_0",   "other_*2",
    "m_6*",     "q_1*",     "*_9",  "m_1*",  "other_*",
    "m_??",     "m_*_*",    "q_*",  "m_*",   "*"};
  std::vector<model_rule> model;
  size_t next_glob = 0;
  for (unsigned k = 0; k < 1000; ++k) {
    if (k % 50 == 25 && next_glob < globs.size()) {
      model_rule g;
      g.glob = true;
      g.pattern = globs[next_glob];
      switch (next_glob++ % 3) { // the last glob, "*", gets a matcher
        case 0:
          break;
        case 1:
          g.label = "zone";
          g.test = [](std::string_view v) { return v != "eu"; };
          g.where_json = R"({"label": "zone", "op": "!=", "value": "eu"})";
          break;
        default:
          g.label = "shard";
          g.test = [](std::string_view v) { return v == "s7"; };
          g.where_json = R"({"label": "shard", "value": "s7"})";
      }
      model.push_back(std::move(g));
    }
    model_rule e;
    e.pattern = "m_" + std::to_string(k % 700);
    switch (pick(4)) {
      case 0: {
        auto want = "s" + std::to_string(pick(10));
        e.label = "shard";
        e.test = [want](std::string_view v) { return v == want; };
        e.where_json = R"({"label": "shard", "value": ")" + want + "\"}";
        break;
      }
      case 1:
        e.label = "shard";
        e.test = [](std::string_view v) {
          return v.size() == 2 && v[0] == 's' && v[1] >= '0' && v[1] <= '4';
        };
        e.where_json = R"({"label": "shard", "op": "=~", "value": "s[0-4]"})";
        break;
      case 2:
        e.label = "zone";
        e.test = [](std::string_view v) { return v.empty(); };
        e.where_json = R"({"label": "zone", "op": "!~", "value": ".+"})";
        break;
      default:
        break;
    }
    model.push_back(std::move(e));
  }
  REQUIRE(next_glob == globs.size());
  REQUIRE(model.size() == 1020);

  std::string doc = R"({"rules": [)";
  for (size_t i = 0; i < model.size(); ++i) {
    auto& m = model[i];
    if (i > 0)
      doc += ",\n";
    doc += R"({"name": "r)" + std::to_string(i) + "\", ";
    doc += (m.glob ? R"("match_glob": ")" : R"("match": ")") + m.pattern + "\"";
    if (!m.where_json.empty())
      doc += R"(, "where": [)" + m.where_json + "]";
    doc += "}";
  }
  doc += "]}";
  auto set = parse_ok(doc);
  REQUIRE(set->rules().size() == model.size());

  auto reference = [&](std::string_view metric, const std::vector<label_ref>& labels) {
    for (size_t i = 0; i < model.size(); ++i) {
      auto& m = model[i];
      if (m.glob ? !wildcard(m.pattern, metric) : m.pattern != metric)
        continue;
      if (!m.label.empty()) {
        std::string_view value;
        for (auto& l : labels)
          if (l.name == m.label)
            value = l.value;
        if (!m.test(value))
          continue;
      }
      return static_cast<long>(i);
    }
    return -1L;
  };

  const std::vector<std::string> zones{"eu", "us", "ap"};
  size_t mismatches = 0;
  size_t by_exact = 0;
  size_t by_glob = 0;
  size_t unmatched = 0;
  std::string first_mismatch;
  for (int n = 0; n < 100000; ++n) {
    std::string metric;
    switch (pick(10)) {
      case 0:
      case 1:
        metric = "other_" + std::to_string(pick(40));
        break;
      case 2:
      case 3:
        metric = "q_" + std::to_string(pick(200));
        break;
      case 4:
        metric = "m_" + std::to_string(pick(100)) + "_" + std::to_string(pick(10));
        break;
      default:
        metric = "m_" + std::to_string(pick(800)); // 700..799 have no exact rule
    }
    std::string shard = "s" + std::to_string(pick(10));
    const std::string& zone = zones[pick(zones.size())];
    std::vector<label_ref> labels;
    if (pick(10) < 7)
      labels.push_back({"shard", shard});
    if (pick(2) == 0)
      labels.push_back({"zone", zone});
    // Already sorted by name: shard < zone.
    auto* got = set->match(metric, labels.data(), labels.size());
    long want = reference(metric, labels);
    long got_index = got ? static_cast<long>(got - set->rules().data()) : -1L;
    if (got && got->index != got_index)
      got_index = -2;
    if (got_index != want) {
      if (mismatches++ == 0)
        first_mismatch = metric + " with " + std::to_string(labels.size())
                         + " labels: got " + std::to_string(got_index) + ", want "
                         + std::to_string(want);
      continue;
    }
    if (want < 0)
      ++unmatched;
    else if (model[static_cast<size_t>(want)].glob)
      ++by_glob;
    else
      ++by_exact;
  }
  INFO(first_mismatch);
  CHECK(mismatches == 0);
  // The lookups exercise every outcome.
  CHECK(by_exact > 1000);
  CHECK(by_glob > 1000);
  CHECK(unmatched > 1000);
}

TEST_CASE("parse rejects an empty rule name", "[rules][errors]") {
  auto err = parse_error(R"({"rules": [{"name": "", "match": "a"}]})");
  CHECK_THAT(err, Contains("rule 0"));
  CHECK_THAT(err, Contains("'name' must not be empty"));
}

TEST_CASE("parse reads outputs and rejects unknown ones", "[rules][errors]") {
  std::string error;
  auto set = rule_set::parse(R"({"rules": [
    {"name": "r", "match": "m", "outputs": ["rate", "total"]}]})", {}, error);
  REQUIRE(set);
  CHECK(set->rules()[0].exports("rate"));
  CHECK_FALSE(set->rules()[0].exports("min"));
  auto err = parse_error(R"({"rules": [{"name": "r", "match": "m", "outputs": ["p42"]}]})");
  CHECK_THAT(err, Contains("unknown output 'p42'"));
  CHECK_THAT(parse_error(R"({"rules": [{"name": "r", "match": "m", "outputs": []}]})"),
             Contains("'outputs' must be a non-empty list"));
}
