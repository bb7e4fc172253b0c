#include "tetherctl/render.hpp"

#include <catch2/catch.hpp>

using namespace tether::tools::ctl;

namespace {

/// A directory body with `count` slices, all on one primary, as the server sends it.
std::string single_node_directory(int count) {
  std::string body = R"({"version":1,"slice_count":)" + std::to_string(count)
                     + R"(,"replication_factor":1,"nodes":["tether-0"],"slices":[)";
  for (int i = 0; i < count; ++i) {
    if (i > 0)
      body += ',';
    body += R"({"slice":)" + std::to_string(i)
            + R"(,"epoch":1,"primary":"tether-0","followers":[]})";
  }
  return body + "]}";
}

} // namespace

TEST_CASE("collapse_slices: merges runs and splits on any difference") {
  std::vector<slice_assignment> in{
    {3, 1, "a", {}}, {0, 1, "a", {}}, {1, 1, "a", {}}, {2, 1, "a", {}}, // 0-3 (unsorted)
    {4, 2, "a", {}},                                                    // epoch differs
    {5, 2, "b", {"a"}}, {6, 2, "b", {"a"}},                             // primary differs
    {7, 2, "b", {"a", "c"}},                                            // followers differ
    {9, 2, "b", {"a", "c"}},                                            // gap at 8
    {10, 2, "", {}},                                                    // no primary
  };
  auto out = collapse_slices(in);
  std::vector<slice_range> expected{
    {0, 3, 1, "a", {}},        {4, 4, 2, "a", {}},         {5, 6, 2, "b", {"a"}},
    {7, 7, 2, "b", {"a", "c"}}, {9, 9, 2, "b", {"a", "c"}}, {10, 10, 2, "", {}},
  };
  CHECK(out == expected);
  CHECK(collapse_slices({}).empty());
}

TEST_CASE("render_directory: one range for a single-node cluster") {
  auto text = render_directory(single_node_directory(1024));
  REQUIRE(text);
  CHECK(*text
        == "directory version 1: 1024 slices, replication factor 1, 1 node\n"
           "\n"
           "0-1023  tether-0  epoch 1  followers -\n"
           "\n"
           "NODE      PRIMARIES  FOLLOWING\n"
           "tether-0       1024          0\n");
}

TEST_CASE("render_directory: ranges, followers, counts and warnings") {
  auto body = R"({"version":7,"slice_count":6,"replication_factor":3,
    "nodes":["n0","n1","n2"],
    "slices":[
      {"slice":0,"epoch":3,"primary":"n0","followers":["n1","n2"]},
      {"slice":1,"epoch":3,"primary":"n0","followers":["n1","n2"]},
      {"slice":2,"epoch":4,"primary":"n1","followers":["n0","n2"]},
      {"slice":3,"epoch":4,"primary":"n1","followers":["n0","n2"]},
      {"slice":4,"epoch":5,"primary":null,"followers":[]}
    ]})";
  auto text = render_directory(body);
  REQUIRE(text);
  CHECK(*text
        == "directory version 7: 6 slices, replication factor 3, 3 nodes\n"
           "warning: 5 of 6 slices listed\n"
           "warning: 1 slice has no primary\n"
           "\n"
           "0-1  n0  epoch 3  followers n1,n2\n"
           "2-3  n1  epoch 4  followers n0,n2\n"
           "4    -   epoch 5  followers -\n"
           "\n"
           "NODE  PRIMARIES  FOLLOWING\n"
           "n0            2          2\n"
           "n1            2          2\n"
           "n2            0          4\n");
}

TEST_CASE("render_nodes: a table with a summary") {
  auto body = R"({"nodes":[
    {"name":"tether-0","address":"127.0.0.1:7480","state":"up","primary_slices":1024,
     "follower_slices":0,"series":123,"samples_applied":4567},
    {"name":"tether-1","address":"127.0.0.1:7481","state":"down","primary_slices":0,
     "follower_slices":12,"series":0,"samples_applied":0}]})";
  auto text = render_nodes(body);
  REQUIRE(text);
  CHECK(*text
        == "NAME      ADDRESS         STATE  PRIMARIES  FOLLOWING  SERIES  SAMPLES\n"
           "tether-0  127.0.0.1:7480  up          1024          0     123     4567\n"
           "tether-1  127.0.0.1:7481  down           0         12       0        0\n"
           "2 nodes, 1 up\n");
}

TEST_CASE("render_nodes: a node the answering node cannot reach shows dashes") {
  auto body = R"({"nodes":[
    {"name":"tether-1","address":"127.0.0.1:7481","state":"up","primary_slices":512,
     "follower_slices":0,"series":7,"samples_applied":9},
    {"name":"tether-2","address":"127.0.0.1:7482","state":"down","primary_slices":512,
     "follower_slices":0,"series":null,"samples_applied":null}]})";
  auto text = render_nodes(body);
  REQUIRE(text);
  CHECK(*text
        == "NAME      ADDRESS         STATE  PRIMARIES  FOLLOWING  SERIES  SAMPLES\n"
           "tether-1  127.0.0.1:7481  up           512          0       7        9\n"
           "tether-2  127.0.0.1:7482  down         512          0       -        -\n"
           "2 nodes, 1 up\n");
}

TEST_CASE("render_where: key, slice, epoch and replicas") {
  auto text = render_where(
    R"({"key":"up{job=\"a\"}","slice":12,"epoch":1,"primary":"tether-0","followers":[]})");
  REQUIRE(text);
  CHECK(*text
        == "key        up{job=\"a\"}\n"
           "slice      12\n"
           "epoch      1\n"
           "primary    tether-0\n"
           "followers  -\n");
}

TEST_CASE("render_series: a counter shows the fields defined for counters") {
  auto body = R"({"key":"http_requests_total{code=\"200\"}","slice":12,"node":"tether-0",
    "epoch":1,"found":true,"state":{"kind":"counter","total":10.0,"last":2.0,"min":1.0,
    "max":5.5,"sum":10.0,"count":4,"updated_ms":1700000000000}})";
  auto text = render_series(body);
  REQUIRE(text);
  CHECK(*text
        == "key      http_requests_total{code=\"200\"}\n"
           "where    slice 12 on tether-0, epoch 1\n"
           "kind     counter\n"
           "total    10\n"
           "last     2\n"
           "updated  2023-11-14T22:13:20.000Z (1700000000000)\n");
}

TEST_CASE("render_series: gauges and histograms show their own fields") {
  auto gauge = render_series(R"({"key":"t","slice":1,"node":"n","epoch":1,"found":true,
    "state":{"kind":"GAUGE","total":0,"last":21.5,"min":20,"max":22,"sum":63.5,"count":3,
    "updated_ms":0}})");
  REQUIRE(gauge);
  CHECK(*gauge
        == "key      t\n"
           "where    slice 1 on n, epoch 1\n"
           "kind     GAUGE\n"
           "last     21.5\n"
           "min      20\n"
           "max      22\n"
           "sum      63.5\n"
           "count    3\n"
           "updated  1970-01-01T00:00:00.000Z (0)\n");
  auto histogram = render_series(R"({"key":"h","slice":1,"node":"n","epoch":1,"found":true,
    "state":{"kind":"histogram","total":0,"last":0.5,"min":0.1,"max":0.9,"sum":1.5,"count":3,
    "updated_ms":0}})");
  REQUIRE(histogram);
  CHECK(histogram->find("total") == std::string::npos);
  CHECK(histogram->find("count    3\n") != std::string::npos);
}

TEST_CASE("render_series: an unknown kind shows every documented field") {
  auto text = render_series(R"({"key":"s","slice":1,"node":"n","epoch":1,"found":true,
    "state":{"kind":"summary","total":1,"last":2,"min":3,"max":4,"sum":5,"count":6,
    "updated_ms":7}})");
  REQUIRE(text);
  for (auto field : {"total", "last", "min", "max", "sum", "count", "updated"})
    CHECK(text->find(field) != std::string::npos);
}

TEST_CASE("render_series: fields beyond the documented ones are shown too") {
  auto body = R"({"key":"g","slice":0,"node":"n","epoch":2,"found":true,
    "state":{"kind":"gauge","last":0.25,"window_ms":1000}})";
  auto text = render_series(body);
  REQUIRE(text);
  CHECK(*text
        == "key        g\n"
           "where      slice 0 on n, epoch 2\n"
           "kind       gauge\n"
           "last       0.25\n"
           "window_ms  1000\n");
}

TEST_CASE("render_series: not found") {
  auto text = render_series(
    R"({"key":"up","slice":3,"node":"tether-0","epoch":1,"found":false,"state":null})");
  REQUIRE(text);
  CHECK(*text == "series up not found (slice 3 on tether-0, epoch 1)\n");
}

TEST_CASE("render functions reject bodies of the wrong shape") {
  CHECK_FALSE(render_nodes("not json"));
  CHECK_FALSE(render_nodes("[]"));
  CHECK_FALSE(render_nodes(R"({"nodes":[{"name":"x"}]})"));
  CHECK_FALSE(render_directory(R"({"version":"1"})"));
  CHECK_FALSE(render_where(R"({"key":"k","slice":-1,"epoch":1})"));
  CHECK_FALSE(render_series(R"({"key":"k","slice":1,"node":"n","epoch":1,"found":true,
                               "state":null})"));
  auto r = render_nodes(R"({"nodes":[{"name":"x"}]})");
  CHECK(r.error().find("/v1/nodes") != std::string::npos);
  CHECK(r.error().find("state") != std::string::npos);
}

TEST_CASE("render_error: the API's error body or the raw status") {
  CHECK(render_error(400, R"({"error":"INVALID_KEY","message":"unbalanced '{'"})")
        == "INVALID_KEY: unbalanced '{' (HTTP 400)");
  CHECK(render_error(404, "no such endpoint\n") == "HTTP 404: no such endpoint");
  CHECK(render_error(502, "") == "HTTP 502");
  CHECK(render_error(500, std::string(300, 'x')) == "HTTP 500: " + std::string(200, 'x') + "...");
}

TEST_CASE("format_number and format_unix_ms") {
  CHECK(format_number(10.0) == "10");
  CHECK(format_number(-3.0) == "-3");
  CHECK(format_number(0.1) == "0.1");
  CHECK(format_number(1e300) == "1e+300");
  CHECK(format_number(2.5e-7) == "2.5e-07");
  CHECK(format_unix_ms(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_unix_ms(1700000000123) == "2023-11-14T22:13:20.123Z");
  CHECK(format_unix_ms(-1) == "1969-12-31T23:59:59.999Z");
}
