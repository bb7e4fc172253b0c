#include "keys/series_key.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tether/errc.hpp"

namespace Catch {
template <>
struct StringMaker<tether::errc> {
  static std::string convert(tether::errc code) {
    return std::string{tether::to_string_view(code)};
  }
};
} // namespace Catch

using namespace tether;
using namespace tether::keys;

namespace {

std::string canonical_of(std::string_view name, std::vector<label_ref> labels,
                         size_t max_labels = 32) {
  size_t n = labels.size();
  auto check = normalise_labels(labels.data(), n, max_labels);
  REQUIRE(check.code == errc::none);
  std::string out;
  append_canonical(out, name, labels.data(), n);
  return out;
}

/// Canonicalises with generous limits and requires success.
std::string canon(std::string_view text) {
  std::string out;
  std::string error;
  auto code = canonicalise(text, 32, 1024, out, error);
  INFO(text << ": " << error);
  REQUIRE(code == errc::none);
  return out;
}

errc canon_error(std::string_view text, std::string& error, size_t max_labels = 32,
                 size_t max_key_bytes = 1024) {
  std::string out = "untouched";
  return canonicalise(text, max_labels, max_key_bytes, out, error);
}

} // namespace

TEST_CASE("metric names follow the Prometheus rules", "[keys]") {
  CHECK(valid_metric_name("up"));
  CHECK(valid_metric_name("http_requests_total"));
  CHECK(valid_metric_name("_hidden"));
  CHECK(valid_metric_name(":colon:start"));
  CHECK(valid_metric_name("job:rate5m:sum"));
  CHECK(valid_metric_name("Mixed_Case_9"));
  CHECK(valid_metric_name("__double_underscore_is_fine_for_metrics"));
  CHECK(valid_metric_name("a"));

  CHECK_FALSE(valid_metric_name(""));
  CHECK_FALSE(valid_metric_name("9lives"));
  CHECK_FALSE(valid_metric_name("http-requests"));
  CHECK_FALSE(valid_metric_name("with space"));
  CHECK_FALSE(valid_metric_name("dot.ted"));
  CHECK_FALSE(valid_metric_name("brace{"));
  CHECK_FALSE(valid_metric_name("caf\xc3\xa9"));
}

TEST_CASE("label names follow the Prometheus rules and reserve __", "[keys]") {
  CHECK(valid_label_name("job"));
  CHECK(valid_label_name("_private"));
  CHECK(valid_label_name("a_b_9"));
  CHECK(valid_label_name("Code"));
  CHECK(valid_label_name("_"));
  CHECK(valid_label_name("a__b"));

  CHECK_FALSE(valid_label_name(""));
  CHECK_FALSE(valid_label_name("__name__"));
  CHECK_FALSE(valid_label_name("__x"));
  CHECK_FALSE(valid_label_name("__"));
  CHECK_FALSE(valid_label_name("9code"));
  CHECK_FALSE(valid_label_name("with:colon"));
  CHECK_FALSE(valid_label_name(":x"));
  CHECK_FALSE(valid_label_name("dash-ed"));
  CHECK_FALSE(valid_label_name("sp ace"));
}

TEST_CASE("normalise_labels sorts by name", "[keys]") {
  std::vector<label_ref> labels{{"zone", "eu"}, {"code", "200"}, {"method", "GET"}};
  size_t n = labels.size();
  auto check = normalise_labels(labels.data(), n, 32);
  REQUIRE(check.code == errc::none);
  REQUIRE(n == 3);
  CHECK(labels[0].name == "code");
  CHECK(labels[0].value == "200");
  CHECK(labels[1].name == "method");
  CHECK(labels[1].value == "GET");
  CHECK(labels[2].name == "zone");
  CHECK(labels[2].value == "eu");
}

TEST_CASE("normalise_labels sorts every permutation to the same order", "[keys]") {
  std::vector<label_ref> base{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}};
  std::vector<size_t> perm{0, 1, 2, 3, 4};
  do {
    std::vector<label_ref> labels;
    for (auto i : perm)
      labels.push_back(base[i]);
    size_t n = labels.size();
    REQUIRE(normalise_labels(labels.data(), n, 32).code == errc::none);
    REQUIRE(n == 5);
    for (size_t i = 0; i < n; ++i) {
      CHECK(labels[i].name == base[i].name);
      CHECK(labels[i].value == base[i].value);
    }
  } while (std::next_permutation(perm.begin(), perm.end()));
}

TEST_CASE("normalise_labels drops labels with empty values", "[keys]") {
  std::vector<label_ref> labels{{"b", ""}, {"c", "3"}, {"a", "1"}, {"d", ""}};
  size_t n = labels.size();
  auto check = normalise_labels(labels.data(), n, 32);
  REQUIRE(check.code == errc::none);
  REQUIRE(n == 2);
  CHECK(labels[0].name == "a");
  CHECK(labels[1].name == "c");
}

TEST_CASE("normalise_labels: all labels empty leaves none", "[keys]") {
  std::vector<label_ref> labels{{"a", ""}, {"b", ""}};
  size_t n = labels.size();
  REQUIRE(normalise_labels(labels.data(), n, 0).code == errc::none);
  CHECK(n == 0);
}

TEST_CASE("normalise_labels: empty values do not count toward the limit", "[keys]") {
  std::vector<label_ref> labels{{"a", "1"}, {"b", ""}, {"c", "3"}, {"d", ""}};
  size_t n = labels.size();
  auto check = normalise_labels(labels.data(), n, 2);
  CHECK(check.code == errc::none);
  CHECK(n == 2);
}

TEST_CASE("normalise_labels sorts in byte order", "[keys]") {
  std::vector<label_ref> labels{{"b", "1"}, {"a", "2"}, {"B", "3"}, {"_x", "4"}, {"a1", "5"}};
  size_t n = labels.size();
  REQUIRE(normalise_labels(labels.data(), n, 32).code == errc::none);
  REQUIRE(n == 5);
  CHECK(labels[0].name == "B");
  CHECK(labels[1].name == "_x");
  CHECK(labels[2].name == "a");
  CHECK(labels[3].name == "a1");
  CHECK(labels[4].name == "b");
}

TEST_CASE("normalise_labels rejects too many labels", "[keys]") {
  std::vector<label_ref> labels{{"a", "1"}, {"b", "2"}, {"c", "3"}};
  size_t n = labels.size();
  auto check = normalise_labels(labels.data(), n, 2);
  CHECK(check.code == errc::too_many_labels);
  CHECK(check.index == 2);

  std::vector<label_ref> exact{{"a", "1"}, {"b", "2"}};
  size_t m = exact.size();
  CHECK(normalise_labels(exact.data(), m, 2).code == errc::none);
}

TEST_CASE("normalise_labels rejects duplicate names and points at one copy",
          "[keys]") {
  std::vector<label_ref> labels{{"zone", "eu"}, {"job", "a"}, {"code", "1"}, {"job", "b"}};
  size_t n = labels.size();
  auto check = normalise_labels(labels.data(), n, 32);
  REQUIRE(check.code == errc::duplicate_label);
  REQUIRE(check.index < n);
  CHECK(labels[check.index].name == "job");
  // After sorting: code, job, job, zone -> the second "job" is at index 2.
  CHECK(check.index == 2);
}

TEST_CASE("normalise_labels rejects invalid names and points at the offender",
          "[keys]") {
  SECTION("reserved prefix") {
    std::vector<label_ref> labels{{"job", "a"}, {"__x", "1"}, {"code", "2"}};
    size_t n = labels.size();
    auto check = normalise_labels(labels.data(), n, 32);
    REQUIRE(check.code == errc::invalid_label_name);
    REQUIRE(check.index < n);
    CHECK(labels[check.index].name == "__x");
  }
  SECTION("leading digit after a dropped label") {
    std::vector<label_ref> labels{{"dropped", ""}, {"job", "a"}, {"1st", "x"}};
    size_t n = labels.size();
    auto check = normalise_labels(labels.data(), n, 32);
    REQUIRE(check.code == errc::invalid_label_name);
    REQUIRE(check.index < n);
    CHECK(labels[check.index].name == "1st");
  }
  SECTION("empty name with a value") {
    std::vector<label_ref> labels{{"", "v"}};
    size_t n = labels.size();
    auto check = normalise_labels(labels.data(), n, 32);
    REQUIRE(check.code == errc::invalid_label_name);
    CHECK(check.index == 0);
  }
}

TEST_CASE("canonical text: name alone has no braces", "[keys]") {
  CHECK(canonical_of("up", {}) == "up");
  CHECK(canonical_size("up", nullptr, 0) == 2);
}

TEST_CASE("canonical text: sorted labels, quoted values, no spaces", "[keys]") {
  CHECK(canonical_of("http_requests_total", {{"method", "GET"}, {"code", "200"}})
        == R"(http_requests_total{code="200",method="GET"})");
  CHECK(canonical_of("x", {{"a", "1"}}) == R"(x{a="1"})");
}

TEST_CASE("canonical text escapes backslash, quote and newline", "[keys]") {
  CHECK(canonical_of("m", {{"v", "back\\slash"}}) == R"(m{v="back\\slash"})");
  CHECK(canonical_of("m", {{"v", "say \"hi\""}}) == R"(m{v="say \"hi\""})");
  CHECK(canonical_of("m", {{"v", "two\nlines"}}) == R"(m{v="two\nlines"})");
  // At either end, and one after another.
  CHECK(canonical_of("m", {{"v", "\"\\x\n\n"}}) == R"(m{v="\"\\x\n\n"})");
  std::string escaped = "<";
  append_escaped_value(escaped, "\\a\"");
  CHECK(escaped == R"(<\\a\")");
  // Other characters pass through unchanged.
  CHECK(canonical_of("m", {{"v", "tab\there, {brace}=,"}})
        == "m{v=\"tab\there, {brace}=,\"}");
}

TEST_CASE("canonical_size equals the number of bytes appended", "[keys]") {
  std::vector<std::vector<label_ref>> sets{
    {},
    {{"a", "1"}},
    {{"a", "1"}, {"b", "22"}},
    {{"code", "200"}, {"method", "GET"}, {"path", "/api/v1"}},
    {{"v", "\\"}},
    {{"v", "\""}},
    {{"v", "\n"}},
    {{"a", "\\\"\n"}, {"b", "x\\y\"z\nw"}, {"c", "plain"}},
  };
  for (auto& labels : sets) {
    std::string out = "prefix:";
    auto before = out.size();
    append_canonical(out, "metric_name", labels.data(), labels.size());
    INFO(out);
    CHECK(canonical_size("metric_name", labels.data(), labels.size())
          == out.size() - before);
    CHECK(out.compare(0, before, "prefix:") == 0);
  }
}

TEST_CASE("parse_key: a bare name", "[keys][parse]") {
  parsed_key k;
  std::string error;
  REQUIRE(parse_key("up", k, error) == errc::none);
  CHECK(k.name == "up");
  CHECK(k.labels.empty());

  REQUIRE(parse_key("  up  ", k, error) == errc::none);
  CHECK(k.name == "up");

  REQUIRE(parse_key("up{}", k, error) == errc::none);
  CHECK(k.name == "up");
  CHECK(k.labels.empty());

  REQUIRE(parse_key("up { }", k, error) == errc::none);
  CHECK(k.labels.empty());
}

TEST_CASE("parse_key keeps labels in the order written", "[keys][parse]") {
  parsed_key k;
  std::string error;
  REQUIRE(parse_key(R"(up{job="api",instance="a:1"})", k, error) == errc::none);
  CHECK(k.name == "up");
  REQUIRE(k.labels.size() == 2);
  CHECK(k.labels[0] == std::make_pair(std::string{"job"}, std::string{"api"}));
  CHECK(k.labels[1] == std::make_pair(std::string{"instance"}, std::string{"a:1"}));
}

TEST_CASE("parse_key allows spaces around tokens", "[keys][parse]") {
  parsed_key k;
  std::string error;
  REQUIRE(parse_key("  up  { job = \"api\" ,  instance=\"a 1\" } ", k, error)
          == errc::none);
  CHECK(k.name == "up");
  REQUIRE(k.labels.size() == 2);
  CHECK(k.labels[0].first == "job");
  CHECK(k.labels[0].second == "api");
  CHECK(k.labels[1].first == "instance");
  CHECK(k.labels[1].second == "a 1"); // spaces inside a value are kept
}

TEST_CASE("parse_key accepts a trailing comma", "[keys][parse]") {
  parsed_key k;
  std::string error;
  REQUIRE(parse_key(R"(up{job="api",})", k, error) == errc::none);
  REQUIRE(k.labels.size() == 1);
  CHECK(k.labels[0].first == "job");
  REQUIRE(parse_key(R"(up{job="api" , })", k, error) == errc::none);
  REQUIRE(k.labels.size() == 1);
}

TEST_CASE("parse_key unescapes values", "[keys][parse]") {
  parsed_key k;
  std::string error;
  REQUIRE(parse_key(R"(m{a="x\\y",b="say \"hi\"",c="l1\nl2"})", k, error)
          == errc::none);
  REQUIRE(k.labels.size() == 3);
  CHECK(k.labels[0].second == "x\\y");
  CHECK(k.labels[1].second == "say \"hi\"");
  CHECK(k.labels[2].second == "l1\nl2");
}

TEST_CASE("parse_key keeps braces, commas and equals inside values",
          "[keys][parse]") {
  parsed_key k;
  std::string error;
  REQUIRE(parse_key(R"(m{a="{x=1,y}"})", k, error) == errc::none);
  REQUIRE(k.labels.size() == 1);
  CHECK(k.labels[0].second == "{x=1,y}");
}

TEST_CASE("parse_key resets its output", "[keys][parse]") {
  parsed_key k;
  k.name = "stale";
  k.labels.emplace_back("old", "label");
  std::string error;
  REQUIRE(parse_key("fresh", k, error) == errc::none);
  CHECK(k.name == "fresh");
  CHECK(k.labels.empty());
}

TEST_CASE("parse_key error paths", "[keys][parse]") {
  struct bad {
    const char* text;
    errc code;
    const char* fragment; // part of the message
  };
  // clang-format off
  const bad cases[] = {
    {"",                          errc::invalid_metric_name, "invalid metric name"},
    {"   ",                       errc::invalid_metric_name, "invalid metric name"},
    {"9up",                       errc::invalid_metric_name, "'9up'"},
    {R"({job="a"})",              errc::invalid_metric_name, "invalid metric name"},
    {"up job",                    errc::invalid_key,         "expected '{'"},
    {"up-down",                   errc::invalid_key,         "expected '{'"},
    {"up(job)",                   errc::invalid_key,         "expected '{'"},
    {"up{",                       errc::invalid_key,         "expected a label name"},
    {R"(up{="a"})",               errc::invalid_key,         "expected a label name"},
    {R"(up{,job="a"})",           errc::invalid_key,         "expected a label name"},
    {R"(up{job="a",,})",          errc::invalid_key,         "expected a label name"},
    {R"(up{job})",                errc::invalid_key,         "expected '='"},
    {R"(up{job:x="a"})",          errc::invalid_key,         "expected '='"},
    {R"(up{job=a})",              errc::invalid_key,         "expected '\"'"},
    {R"(up{job='a'})",            errc::invalid_key,         "expected '\"'"},
    {R"(up{job=)",                errc::invalid_key,         "expected '\"'"},
    {R"(up{job="a)",              errc::invalid_key,         "unterminated"},
    {R"(up{job="a\)",             errc::invalid_key,         "dangling escape"},
    {R"(up{job="a\t"})",          errc::invalid_key,         "unknown escape \\t"},
    {R"(up{job="a\x41"})",        errc::invalid_key,         "unknown escape"},
    {R"(up{job="a" instance="b"})", errc::invalid_key,       "expected ',' or '}'"},
    {R"(up{job="a";instance="b"})", errc::invalid_key,       "expected ',' or '}'"},
    {R"(up{job="a"})" " x",       errc::invalid_key,         "unexpected text after '}'"},
    {R"(up{job="a"}})",           errc::invalid_key,         "unexpected text after '}'"},
    {"up{}x",                     errc::invalid_key,         "unexpected text after '}'"},
    {R"(up{job="a",}extra)",      errc::invalid_key,         "unexpected text after '}'"},
  };
  // clang-format on
  for (auto& c : cases) {
    parsed_key k;
    std::string error;
    INFO("text: " << c.text);
    CHECK(parse_key(c.text, k, error) == c.code);
    CHECK_THAT(error, Catch::Contains(c.fragment));
  }
}

TEST_CASE("parse_key leaves label name validation to canonicalise",
          "[keys][parse]") {
  parsed_key k;
  std::string error;
  // The parser accepts the token; the naming rules reject it later.
  REQUIRE(parse_key(R"(up{__name__="x"})", k, error) == errc::none);
  REQUIRE(k.labels.size() == 1);
  CHECK(k.labels[0].first == "__name__");
  CHECK(canon_error(R"(up{__name__="x"})", error) == errc::invalid_label_name);
  CHECK_THAT(error, Catch::Contains("__name__"));
  CHECK(canon_error(R"(up{1a="x"})", error) == errc::invalid_label_name);
  CHECK_THAT(error, Catch::Contains("1a"));
}

TEST_CASE("canonicalise sorts labels and normalises spacing", "[keys][canon]") {
  CHECK(canon(R"(http_requests_total{method="GET", code="200"})")
        == R"(http_requests_total{code="200",method="GET"})");
  CHECK(canon("  up  ") == "up");
  CHECK(canon("up{}") == "up");
  CHECK(canon(R"(up{job="api",})") == R"(up{job="api"})");
}

TEST_CASE("canonicalise: different label orders give the same key",
          "[keys][canon]") {
  auto a = canon(R"(m{a="1",b="2",c="3"})");
  CHECK(canon(R"(m{c="3",b="2",a="1"})") == a);
  CHECK(canon(R"(m{b="2", a="1" , c="3",})") == a);
  CHECK(canon(R"(m { c = "3" , a = "1" , b = "2" })") == a);
  CHECK(a == R"(m{a="1",b="2",c="3"})");
}

TEST_CASE("canonicalise drops empty label values", "[keys][canon]") {
  CHECK(canon(R"(up{job="",instance="a"})") == R"(up{instance="a"})");
  CHECK(canon(R"(up{job=""})") == "up");
}

TEST_CASE("canonicalise is idempotent", "[keys][canon]") {
  const char* inputs[] = {
    "up",
    R"(http_requests_total{method="GET",code="200"})",
    R"(m{v="back\\slash",q="say \"hi\"",n="two\nlines"})",
    R"(m{ z = "{,}=" , a = "\\\"" })",
    R"(job:rate5m:sum{job="api",instance="",zone="eu-1",})",
  };
  for (auto* text : inputs) {
    auto once = canon(text);
    INFO(text << " -> " << once);
    CHECK(canon(once) == once);
  }
}

TEST_CASE("canonicalise round-trips escaped values", "[keys][canon]") {
  auto key = canon(R"(m{n="a\nb",q="\"",s="\\"})");
  CHECK(key == R"(m{n="a\nb",q="\"",s="\\"})");
  parsed_key k;
  std::string error;
  REQUIRE(parse_key(key, k, error) == errc::none);
  REQUIRE(k.labels.size() == 3);
  CHECK(k.labels[0].second == "a\nb");
  CHECK(k.labels[1].second == "\"");
  CHECK(k.labels[2].second == "\\");
}

TEST_CASE("canonicalise error paths", "[keys][canon]") {
  std::string error;

  CHECK(canon_error("", error) == errc::invalid_metric_name);
  CHECK(canon_error("up{", error) == errc::invalid_key);

  CHECK(canon_error(R"(up{job="a",job="b"})", error) == errc::duplicate_label);
  CHECK_THAT(error, Catch::Contains("'job'"));

  error.clear();
  CHECK(canon_error(R"(up{a="1",b="2",c="3"})", error, 2) == errc::too_many_labels);
  CHECK_THAT(error, Catch::Contains("2"));
  CHECK(canon_error(R"(up{a="1",b="2",c=""})", error, 2) == errc::none);

  CHECK(canon_error(R"(up{__x="1"})", error) == errc::invalid_label_name);
  CHECK_THAT(error, Catch::Contains("__x"));
}

TEST_CASE("canonicalise rejects bad or repeated names of empty-valued labels",
          "[keys][canon]") {
  // docs/protocol.md section 12.2: text that repeats a label or breaks the name rules
  // is refused; an empty value drops a label from the key, not from the checks.
  std::string error;
  CHECK(canon_error(R"(up{job="",job="api"})", error) == errc::duplicate_label);
  CHECK(canon_error(R"(up{__x="",job="api"})", error) == errc::invalid_label_name);
}

TEST_CASE("canonicalise enforces the key size limit on the canonical form",
          "[keys][canon]") {
  // up{a="1"} is 9 bytes.
  const std::string text = R"(  up { a = "1" }  )";
  std::string out;
  std::string error;
  CHECK(canonicalise(text, 32, 9, out, error) == errc::none);
  CHECK(out == R"(up{a="1"})");

  out = "untouched";
  CHECK(canonicalise(text, 32, 8, out, error) == errc::key_too_long);
  CHECK_THAT(error, Catch::Contains("9 bytes"));
  CHECK_THAT(error, Catch::Contains("8"));

  // Escapes count as written in the canonical form: m{v="\n"} is 9 bytes.
  CHECK(canonicalise(R"(m{v="\n"})", 32, 9, out, error) == errc::none);
  CHECK(canonicalise(R"(m{v="\n"})", 32, 8, out, error) == errc::key_too_long);
}

TEST_CASE("normalise_labels refuses label counts beyond its limits before sorting",
          "[keys][limits]") {
  // Reverse-sorted and empty-valued: what once made label normalisation quadratic.
  std::vector<std::string> names;
  for (int i = 0; i < 60000; ++i)
    names.push_back("l" + std::to_string(1000000 - i));
  std::vector<label_ref> labels;
  for (auto& n : names)
    labels.push_back({n, ""});
  size_t n = labels.size();
  auto check = normalise_labels(labels.data(), n, 32);
  CHECK(check.code == errc::too_many_labels);
  CHECK(labels.front().name == names.front()); // refused before any reordering

  SECTION("at most max_labels_sent labels as sent, empty ones included") {
    CHECK(max_labels_sent(32) == 64);
    CHECK(max_labels_sent(100) == 200);
    size_t m = 64;
    CHECK(normalise_labels(labels.data(), m, 32).code == errc::none);
    CHECK(m == 0);
    m = 65;
    CHECK(normalise_labels(labels.data(), m, 32).code == errc::too_many_labels);
  }
  SECTION("non-empty labels beyond the limit are refused unsorted") {
    std::vector<label_ref> full;
    for (size_t i = 0; i < 40; ++i)
      full.push_back({names[i], "v"});
    size_t m = full.size();
    CHECK(normalise_labels(full.data(), m, 32).code == errc::too_many_labels);
    CHECK(full.front().name == names.front());
  }
}

TEST_CASE("canonicalise stops parsing at the label limit", "[keys][limits]") {
  std::string text = "up{";
  for (int i = 0; i < 90000; ++i)
    text += "a" + std::to_string(i) + "=\"\",";
  text += "}";
  std::string out;
  std::string error;
  CHECK(canonicalise(text, 32, 1024, out, error) == errc::too_many_labels);
  CHECK(error == "more than 32 labels");
}

TEST_CASE("key parse errors are valid UTF-8", "[keys][utf8]") {
  std::string out;
  std::string error;
  CHECK(canonicalise("up{a=\"\\\xc3\xa9\"}", 32, 1024, out, error) == errc::invalid_key);
  CHECK(error.find("\\xc3") != std::string::npos);
  CHECK(error.find('\xc3') == std::string::npos);
  CHECK(canonicalise("\xff", 32, 1024, out, error) != errc::none);
}
