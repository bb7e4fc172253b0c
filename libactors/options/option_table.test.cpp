#include "tether/option_table.hpp"

#include <cmath>
#include <sstream>

#include <caf/actor_system_config.hpp>

#include <catch2/catch.hpp>

using Catch::Matchers::Contains;

namespace {

struct demo_options {
  bool verbose = false;
  uint16_t port = 7480;
  uint32_t count = 3;
  uint64_t big = uint64_t{1} << 48;
  double ratio = 0.5;
  std::string name = "demo";
  std::vector<std::string> members;
};

tether::option_table demo_table(demo_options& o) {
  return {
    {"verbose", &o.verbose, "talk more"},
    {"port", &o.port, "a port"},
    {"count", &o.count, "how many; `0` = none", tether::in(1, 8)},
    {"big", &o.big, "a large number", tether::in(1u << 16)},
    {"ratio", &o.ratio, "a fraction", tether::in_real(0, 1)},
    {"name", &o.name, "a name", tether::in(1, 4)},
    {"members", &o.members, "1 or 3 names", tether::one_of({1, 3}), "none"},
  };
}

std::string check(demo_options o) {
  return tether::check_options("demo", demo_table(o));
}

/// Parses `args` as a command line against the demo table and reads it into a struct.
std::pair<demo_options, std::string> parse(std::vector<std::string> args) {
  caf::actor_system_config cfg;
  demo_options defaults;
  tether::declare_options(cfg, "demo", demo_table(defaults));
  std::istringstream no_config_file;
  demo_options out;
  if (auto err = cfg.parse(std::move(args), no_config_file))
    return {out, "parse: " + to_string(err)};
  return {out, tether::read_options(cfg, "demo", demo_table(out))};
}

} // namespace

TEST_CASE("check_options accepts values within their bounds", "[options]") {
  demo_options o;
  o.members = {"a"};
  CHECK(check(o).empty());
  o.count = 8;
  o.ratio = 1;
  o.members = {"a", "b", "c"};
  CHECK(check(o).empty());
}

TEST_CASE("check_options names the first option out of bounds and its bounds",
          "[options]") {
  demo_options o;
  o.members = {"a"};
  o.count = 9;
  o.ratio = 2; // out of bounds too, but later in the table
  CHECK(check(o) == "demo.count = 9 is out of bounds [1, 8]");
  o.count = 0;
  CHECK(check(o) == "demo.count = 0 is out of bounds [1, 8]");
  o.count = 1;
  CHECK(check(o) == "demo.ratio = 2 is out of bounds [0, 1]");
  o.ratio = std::nan("");
  CHECK_THAT(check(o), Contains("demo.ratio = nan is out of bounds"));
  o.ratio = 0;
  o.big = 1000;
  CHECK(check(o) == "demo.big = 1000 is out of bounds [65536, 18446744073709551615]");
  o.big = 65536;
  o.name = "";
  CHECK(check(o) == "demo.name has 0 bytes, not 1 to 4");
  o.name = "abcde";
  CHECK(check(o) == "demo.name has 5 bytes, not 1 to 4");
  o.name = "abcd";
  o.members = {"a", "b"};
  CHECK(check(o) == "demo.members has 2 entries, not 1 or 3");
}

TEST_CASE("read_options reads given options and keeps the others' defaults",
          "[options]") {
  auto [o, err] = parse({"--demo.count=5", "--demo.members=[\"x\",\"y\",\"z\"]",
                         "--demo.ratio=0.25", "--demo.verbose"});
  INFO(err);
  REQUIRE(err.empty());
  CHECK(o.count == 5);
  CHECK(o.members == std::vector<std::string>{"x", "y", "z"});
  CHECK(o.ratio == 0.25);
  CHECK(o.verbose);
  CHECK(o.port == 7480);
  CHECK(o.name == "demo");
  CHECK(o.big == uint64_t{1} << 48);
}

TEST_CASE("read_options leaves bounds to check_options", "[options]") {
  auto [o, err] = parse({"--demo.count=100"});
  REQUIRE(err.empty());
  CHECK(o.count == 100);
  CHECK(check(o) == "demo.count = 100 is out of bounds [1, 8]");
}

TEST_CASE("a value of the wrong type fails when CAF parses or when it is read",
          "[options]") {
  CHECK_THAT(parse({"--demo.count=many"}).second, Contains("parse:"));
  CHECK_THAT(parse({"--demo.port=70000"}).second, Contains("parse:"));
  // A config file is parsed without the options' types: reading names the option.
  caf::actor_system_config cfg;
  demo_options defaults;
  tether::declare_options(cfg, "demo", demo_table(defaults));
  std::istringstream file{"demo {\n  count = \"many\"\n}\n"};
  auto parsed = cfg.parse(caf::actor_system_config::string_list{}, file);
  demo_options o;
  auto err = parsed ? "parse: " + to_string(parsed)
                    : tether::read_options(cfg, "demo", demo_table(o));
  CHECK_THAT(err, Contains("demo.count"));
}

TEST_CASE("options_markdown renders one row per option with default and bounds",
          "[options]") {
  demo_options d;
  auto md = tether::options_markdown("demo", {demo_table(d)});
  CHECK_THAT(md, Contains("| option | default | bounds | meaning |\n"
                          "| --- | --- | --- | --- |\n"
                          "| `demo.verbose` | `false` | `true` or `false` | talk more |\n"
                          "| `demo.port` | `7480` | – | a port |\n"
                          "| `demo.count` | `3` | 1 to 8 | how many; `0` = none |\n"
                          "| `demo.big` | `281474976710656` (2^48) | ≥ 65536 | a large number |\n"
                          "| `demo.ratio` | `0.5` | 0 to 1 | a fraction |\n"
                          "| `demo.name` | `demo` | 1 to 4 bytes | a name |\n"
                          "| `demo.members` | none | 1 or 3 entries | 1 or 3 names |\n"));
}
