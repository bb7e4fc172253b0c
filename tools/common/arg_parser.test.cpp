#include "arg_parser.hpp"

#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using tether::tools::option_spec;
using tether::tools::parse_args;
using tether::tools::parse_count;
using tether::tools::parse_duration;

namespace {

const std::vector<option_spec> specs{
  {"server", true, "HOST:PORT", "server address"},
  {"json", false, "", "raw JSON"},
  {"help", false, "", "show help"},
};

tether::tools::result<tether::tools::parsed_args>
parse(const std::vector<std::string_view>& args, bool positionals = false) {
  CLI::App app{"test", "test"};
  add_options(app, specs);
  std::vector<std::string> rest;
  if (positionals)
    app.add_option("ARGS", rest);
  return parse_args(app, args, specs);
}

} // namespace

TEST_CASE("parse_args: options and positionals interleave") {
  auto r = parse({"--server", "h:1", "where", "--json", "up{a=\"b\"}"}, true);
  REQUIRE(r);
  CHECK(r->get("server") == "h:1");
  CHECK(r->has("json"));
  CHECK_FALSE(r->has("help"));
}

TEST_CASE("parse_args: --name=value form, last occurrence wins, -- ends options") {
  auto r = parse({"--server=a:1", "--server", "b:2", "--", "--json", "-x"}, true);
  REQUIRE(r);
  CHECK(r->get("server") == "b:2");
  CHECK_FALSE(r->has("json"));
  auto empty_value = parse({"--server="});
  REQUIRE(empty_value);
  CHECK(empty_value->get("server") == "");
}

TEST_CASE("parse_args: -h aliases --help") {
  auto r = parse({"-h"});
  REQUIRE(r);
  CHECK(r->has("help"));
  CHECK(parse({"--json", "--help"})->has("help"));
}

TEST_CASE("parse_args: usage errors") {
  CHECK_FALSE(parse({"--bogus"}));
  CHECK_FALSE(parse({"-j"}));
  CHECK_FALSE(parse({"--server"}));
  CHECK_FALSE(parse({"--json=yes"}));
  CHECK_FALSE(parse({"stray"}));
  CHECK_THAT(parse({"--server"}).error(), Catch::Matchers::Contains("--server"));
}

TEST_CASE("CLI11 renders the help from the declarations") {
  CLI::App app{"test", "test"};
  add_options(app, specs);
  auto text = app.help();
  CHECK_THAT(text, Catch::Matchers::Contains("--server HOST:PORT"));
  CHECK_THAT(text, Catch::Matchers::Contains("server address"));
  CHECK_THAT(text, Catch::Matchers::Contains("-h,--help"));
}

TEST_CASE("parse_count: integers with bounds and decimal suffixes") {
  CHECK(*parse_count("0", "n", 0, 10) == 0);
  CHECK(*parse_count("10", "n", 0, 10) == 10);
  CHECK(*parse_count("5k", "n", 0, UINT64_MAX) == 5'000);
  CHECK(*parse_count("2M", "n", 0, UINT64_MAX) == 2'000'000);
  CHECK(*parse_count("3G", "n", 0, UINT64_MAX) == 3'000'000'000);
  CHECK_FALSE(parse_count("11", "n", 0, 10));
  CHECK_FALSE(parse_count("0", "n", 1, 10));
  CHECK_FALSE(parse_count("", "n", 0, 10));
  CHECK_FALSE(parse_count("k", "n", 0, 10));
  CHECK_FALSE(parse_count("-1", "n", 0, 10));
  CHECK_FALSE(parse_count("1.5", "n", 0, 10));
  CHECK_FALSE(parse_count("99999999999999999999", "n", 0, UINT64_MAX));
  CHECK_FALSE(parse_count("99999999999999G", "n", 0, UINT64_MAX));
  CHECK(parse_count("11", "batch", 0, 10).error().find("--batch") != std::string::npos);
}

TEST_CASE("parse_duration: units, fractions and bounds") {
  CHECK(*parse_duration("10", "d", 0ms, 1h) == 10s);
  CHECK(*parse_duration("1.5", "d", 0ms, 1h) == 1500ms);
  CHECK(*parse_duration("250ms", "d", 0ms, 1h) == 250ms);
  CHECK(*parse_duration("2s", "d", 0ms, 1h) == 2s);
  CHECK(*parse_duration("3m", "d", 0ms, 1h) == 180s);
  CHECK(*parse_duration("1h", "d", 0ms, 1h) == 1h);
  CHECK(*parse_duration("400", "d", 0ms, 1h, 1ms) == 400ms);
  CHECK_FALSE(parse_duration("2h", "d", 0ms, 1h));
  CHECK_FALSE(parse_duration("0", "d", 1ms, 1h));
  CHECK_FALSE(parse_duration("", "d", 0ms, 1h));
  CHECK_FALSE(parse_duration("s", "d", 0ms, 1h));
  CHECK_FALSE(parse_duration("-1", "d", 0ms, 1h));
  CHECK_FALSE(parse_duration("1x", "d", 0ms, 1h));
  CHECK_FALSE(parse_duration("nan", "d", 0ms, 1h));
  CHECK_FALSE(parse_duration("1e3", "d", 0ms, 1h));
}
