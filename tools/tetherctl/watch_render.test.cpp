#include "tetherctl/watch_render.hpp"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

using namespace tether::tools::ctl;

namespace {

boost::json::object body_of(std::string_view text) {
  auto frame = parse_stream_frame(text);
  REQUIRE(frame);
  return frame->body;
}

} // namespace

TEST_CASE("parse_stream_frame: recognizes the frames watch handles") {
  auto welcome = parse_stream_frame(R"({"welcome":{"node":"tether-0","protocolVersion":1}})");
  REQUIRE(welcome);
  CHECK(welcome->kind == stream_frame::type::welcome);
  CHECK(welcome->body.at("node").as_string() == "tether-0");
  CHECK(parse_stream_frame(R"({"windowUpdate":{}})")->kind
        == stream_frame::type::window_update);
  CHECK(parse_stream_frame(R"({"window_update":{}})")->kind
        == stream_frame::type::window_update);
  CHECK(parse_stream_frame(R"({"error":{}})")->kind == stream_frame::type::error);
  CHECK(parse_stream_frame(R"({"pong":{"nonce":"1"}})")->kind == stream_frame::type::pong);
  CHECK(parse_stream_frame(R"({"somethingNew":{}})")->kind == stream_frame::type::other);
  CHECK_FALSE(parse_stream_frame("not json"));
  CHECK_FALSE(parse_stream_frame("[]"));
  CHECK_FALSE(parse_stream_frame(R"({"a":{},"b":{}})"));
  CHECK_FALSE(parse_stream_frame(R"({"ack":1})"));
}

TEST_CASE("request frames are proto3 JSON") {
  CHECK(make_hello_json("w-1", "") == R"({"hello":{"producerId":"w-1","protocolVersion":1}})");
  CHECK(make_hello_json("w-1", "s3")
        == R"({"hello":{"producerId":"w-1","protocolVersion":1,"token":"s3"}})");
  CHECK(make_subscribe_json(1, {"up", R"(a{b="c"})"})
        == R"({"subscribe":{"requestId":"1","keys":["up","a{b=\"c\"}"]}})");
  CHECK(make_ping_json(42) == R"({"ping":{"nonce":"42"}})");
}

TEST_CASE("render_stream_error and request_id_of") {
  auto err = body_of(R"({"error":{"code":"INVALID_KEY","message":"expected '\"' at offset 25",
    "sequence":"0","requestId":"12","sampleIndex":-1,"retryable":false}})");
  CHECK(render_stream_error(err) == "INVALID_KEY: expected '\"' at offset 25");
  CHECK(request_id_of(err) == 12);
  auto retry = body_of(R"({"error":{"code":"UNAVAILABLE","message":"slow","retryable":true,
    "request_id":7}})");
  CHECK(render_stream_error(retry) == "UNAVAILABLE: slow (retryable)");
  CHECK(request_id_of(retry) == 7);
  CHECK(render_stream_error(body_of(R"({"error":{}})")) == "ERROR");
}

TEST_CASE("render_window_update: the initial state") {
  auto update = body_of(R"({"windowUpdate":{"requestId":"20","windowStartMs":"0",
    "windowEndMs":"1700000003127","series":[{"key":"room_temp_celsius{room=\"lab\"}",
    "kind":"GAUGE","slice":416,"node":"tether-0","epoch":"1","total":0,"last":21.5,
    "min":21.5,"max":21.5,"sum":21.5,"count":"1","updatedMs":"1700000001000"}]}})");
  CHECK(is_initial_update(update));
  auto text = render_window_update(update);
  REQUIRE(text);
  CHECK(*text
        == "current state at 2023-11-14T22:13:23.127Z: 1 series\n"
           "KEY                            KIND   TOTAL  LAST   MIN   MAX   SUM  COUNT  UPDATED\n"
           "room_temp_celsius{room=\"lab\"}  gauge      -  21.5  21.5  21.5  21.5      1  "
           "2023-11-14T22:13:21.000Z\n");
}

TEST_CASE("render_window_update: a window close with a counter") {
  auto update = body_of(R"({"windowUpdate":{"requestId":"1","windowStartMs":"1700000000000",
    "windowEndMs":"1700000010000","series":[{"key":"c","kind":"COUNTER","total":95,"last":5,
    "min":0,"max":0,"sum":0,"count":"0","updatedMs":"1700000004410",
    "window":{"windowStartMs":"1700000000000","windowEndMs":"1700000010000","count":"4",
    "sum":20,"increase":20,"total":95,"rate":2,"last":5,"min":5,"max":5,"mean":5,
    "quantiles":[]}}]}})");
  CHECK_FALSE(is_initial_update(update));
  auto text = render_window_update(update);
  REQUIRE(text);
  CHECK(*text
        == "window 2023-11-14T22:13:20.000Z .. 2023-11-14T22:13:30.000Z: 1 series changed\n"
           "KEY  KIND     COUNT  TOTAL  INCREASE  RATE/S  LAST  MIN  MAX  MEAN  QUANTILES\n"
           "c    counter      4     95        20       2     -    -    -     -  -\n");
}

TEST_CASE("render_window_update: a histogram window shows its quantiles") {
  auto update = body_of(R"({"windowUpdate":{"requestId":"1","windowStartMs":"1000",
    "windowEndMs":"2000","series":[{"key":"lat","kind":"HISTOGRAM",
    "window":{"count":"3","min":1,"max":9,"mean":4,"last":9,
    "quantiles":[{"q":0.5,"value":2},{"q":0.99,"value":9}]}}]}})");
  auto text = render_window_update(update);
  REQUIRE(text);
  CHECK(text->find("p0.5=2 p0.99=9") != std::string::npos);
}

TEST_CASE("render_window_update: an empty window and a malformed one") {
  auto empty = render_window_update(body_of(
    R"({"windowUpdate":{"requestId":"1","windowStartMs":"10000","windowEndMs":"20000","series":[]}})"));
  REQUIRE(empty);
  CHECK(*empty
        == "window 1970-01-01T00:00:10.000Z .. 1970-01-01T00:00:20.000Z: no series changed\n");
  CHECK_FALSE(render_window_update(body_of(R"({"windowUpdate":{"series":{}}})")));
  CHECK_FALSE(render_window_update(body_of(R"({"windowUpdate":{"series":[1]}})")));
}
