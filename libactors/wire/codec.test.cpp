#include "wire/codec.hpp"

#include <chrono>
#include <string>

#include <cmath>

#include <google/protobuf/stubs/logging.h>

#include <catch2/catch.hpp>

#include "wire/tether.pb.h"

using namespace tether;
using namespace tether::wire;

namespace {

v1::ClientFrame decode_json_ok(const std::string& text) {
  v1::ClientFrame frame;
  std::string error;
  auto ok = decode(text, encoding::json, frame, error);
  INFO(text << ": " << error);
  REQUIRE(ok);
  return frame;
}

std::string decode_json_error(const std::string& text) {
  v1::ClientFrame frame;
  std::string error;
  INFO(text);
  CHECK_FALSE(decode(text, encoding::json, frame, error));
  CHECK_FALSE(error.empty());
  return error;
}

const errc all_codes[] = {
  errc::malformed_frame,     errc::frame_too_large,   errc::hello_required,
  errc::unauthenticated,     errc::bad_hello,         errc::invalid_sequence,
  errc::sequence_too_old,    errc::empty_batch,       errc::too_many_samples,
  errc::invalid_metric_name, errc::invalid_label_name, errc::duplicate_label,
  errc::too_many_labels,     errc::key_too_long,      errc::unknown_kind,
  errc::non_finite_value,    errc::negative_counter,  errc::invalid_timestamp,
  errc::kind_conflict,       errc::invalid_key,       errc::unavailable,
  errc::internal,
};

} // namespace

TEST_CASE("decode binary client frames", "[codec]") {
  v1::ClientFrame in;
  auto* w = in.mutable_write();
  w->set_sequence(0xFFFFFFFFFFFFFFFFull);
  auto* s = w->add_samples();
  s->set_name("up");
  s->set_kind(v1::GAUGE);
  s->set_value(2.5);
  auto* l = s->add_labels();
  l->set_name("job");
  l->set_value("api");
  std::string bytes;
  REQUIRE(in.SerializeToString(&bytes));

  v1::ClientFrame out;
  std::string error;
  REQUIRE(decode(bytes, encoding::binary, out, error));
  REQUIRE(out.has_write());
  CHECK(out.write().sequence() == 0xFFFFFFFFFFFFFFFFull);
  REQUIRE(out.write().samples_size() == 1);
  CHECK(out.write().samples(0).name() == "up");
  CHECK(out.write().samples(0).kind() == v1::GAUGE);
  CHECK(out.write().samples(0).value() == 2.5);
  CHECK(out.write().samples(0).labels(0).value() == "api");
}

TEST_CASE("decode replaces what the output frame held", "[codec]") {
  v1::ClientFrame ping;
  ping.mutable_ping()->set_nonce(9);
  std::string bytes;
  REQUIRE(ping.SerializeToString(&bytes));

  v1::ClientFrame out;
  out.mutable_hello()->set_producer_id("stale");
  std::string error;
  REQUIRE(decode(bytes, encoding::binary, out, error));
  CHECK_FALSE(out.has_hello());
  REQUIRE(out.has_ping());
  CHECK(out.ping().nonce() == 9);

  out.mutable_hello()->set_producer_id("stale");
  REQUIRE(decode(R"({"ping":{"nonce":"3"}})", encoding::json, out, error));
  CHECK_FALSE(out.has_hello());
  CHECK(out.ping().nonce() == 3);
}

TEST_CASE("decode rejects malformed binary frames", "[codec]") {
  const std::string bad[] = {
    std::string("\x0f", 1),            // field 1 with wire type 7
    std::string("\x12\x05\x08", 3),    // write: length 5, 1 byte follows
    std::string("\x12\xff", 2),        // truncated length varint
    std::string("\x0a\x02\x0a\x05", 4), // nested length beyond the parent
  };
  for (auto& bytes : bad) {
    v1::ClientFrame out;
    std::string error;
    CHECK_FALSE(decode(bytes, encoding::binary, out, error));
    CHECK_THAT(error, Catch::Contains("binary"));
  }
}

TEST_CASE("decode rejects binary strings that are not UTF-8", "[codec]") {
  // hello { producer_id: "\xff" }
  const std::string bytes("\x0a\x03\x0a\x01\xff", 5);
  google::protobuf::LogSilencer quiet; // the library logs the failure as well
  v1::ClientFrame out;
  std::string error;
  CHECK_FALSE(decode(bytes, encoding::binary, out, error));
  CHECK_FALSE(error.empty());
}

TEST_CASE("decode matches the protocol's binary example", "[codec]") {
  // docs/protocol.md section 2.1: ClientFrame{ping{nonce: 42}} is 2a 02 08 2a.
  v1::ClientFrame out;
  std::string error;
  REQUIRE(decode(std::string("\x2a\x02\x08\x2a", 4), encoding::binary, out, error));
  REQUIRE(out.has_ping());
  CHECK(out.ping().nonce() == 42);

  v1::ServerFrame pong;
  pong.mutable_pong()->set_nonce(42);
  std::string bytes;
  encode(pong, encoding::binary, bytes);
  CHECK(bytes == std::string("\x32\x02\x08\x2a", 4));
}

TEST_CASE("decode JSON with lowerCamelCase and original field names", "[codec]") {
  auto camel = decode_json_ok(
    R"({"hello":{"producerId":"p-1","token":"secret","protocolVersion":1}})");
  REQUIRE(camel.has_hello());
  CHECK(camel.hello().producer_id() == "p-1");
  CHECK(camel.hello().token() == "secret");
  CHECK(camel.hello().protocol_version() == 1);

  auto snake = decode_json_ok(
    R"({"hello":{"producer_id":"p-2","protocol_version":1}})");
  REQUIRE(snake.has_hello());
  CHECK(snake.hello().producer_id() == "p-2");
  CHECK(snake.hello().protocol_version() == 1);
}

TEST_CASE("decode JSON writes: 64-bit numbers as strings or numbers, enum names",
          "[codec]") {
  auto f = decode_json_ok(R"({"write":{
      "sequence":"18446744073709551615",
      "samples":[
        {"name":"http_requests_total",
         "labels":[{"name":"code","value":"200"}],
         "kind":"COUNTER","value":1.5,
         "timestampMs":"1700000000123","counterMode":"CUMULATIVE"},
        {"name":"temp","kind":"GAUGE","value":-2,
         "timestamp_ms":1700000000456,"counter_mode":"DELTA"},
        {"name":"lat","kind":"HISTOGRAM","value":0.25}
      ]}})");
  REQUIRE(f.has_write());
  auto& w = f.write();
  CHECK(w.sequence() == 0xFFFFFFFFFFFFFFFFull);
  REQUIRE(w.samples_size() == 3);
  CHECK(w.samples(0).name() == "http_requests_total");
  REQUIRE(w.samples(0).labels_size() == 1);
  CHECK(w.samples(0).labels(0).name() == "code");
  CHECK(w.samples(0).labels(0).value() == "200");
  CHECK(w.samples(0).kind() == v1::COUNTER);
  CHECK(w.samples(0).value() == 1.5);
  CHECK(w.samples(0).timestamp_ms() == 1700000000123);
  CHECK(w.samples(0).counter_mode() == v1::CUMULATIVE);
  CHECK(w.samples(1).kind() == v1::GAUGE);
  CHECK(w.samples(1).value() == -2);
  CHECK(w.samples(1).timestamp_ms() == 1700000000456);
  CHECK(w.samples(1).counter_mode() == v1::DELTA);
  CHECK(w.samples(2).kind() == v1::HISTOGRAM);
  CHECK(w.samples(2).timestamp_ms() == 0);

  auto numeric = decode_json_ok(R"({"write":{"sequence":42,"samples":[]}})");
  CHECK(numeric.write().sequence() == 42);
}

TEST_CASE("decode JSON subscribe, query and ping", "[codec]") {
  auto sub = decode_json_ok(
    R"({"subscribe":{"requestId":"5","keys":["up","m{a=\"1\"}"]}})");
  REQUIRE(sub.has_subscribe());
  CHECK(sub.subscribe().request_id() == 5);
  REQUIRE(sub.subscribe().keys_size() == 2);
  CHECK(sub.subscribe().keys(1) == R"(m{a="1"})");

  auto q = decode_json_ok(R"({"query":{"request_id":7,"key":"up"}})");
  REQUIRE(q.has_query());
  CHECK(q.query().request_id() == 7);
  CHECK(q.query().key() == "up");

  auto p = decode_json_ok(R"({"ping":{}})");
  CHECK(p.has_ping());
}

TEST_CASE("decode JSON doubles, 32-bit strings and enum numbers as the protocol allows",
          "[codec]") {
  auto f = decode_json_ok(R"({"write":{"sequence":"1","samples":[
      {"name":"a","kind":7,"value":"NaN"},
      {"name":"b","kind":1,"value":"Infinity"},
      {"name":"c","kind":"GAUGE","value":"-Infinity"},
      {"name":"d","kind":"GAUGE","value":"1.5"}]}})");
  auto& w = f.write();
  REQUIRE(w.samples_size() == 4);
  // An unknown enum number parses; validation rejects it later.
  CHECK(static_cast<int>(w.samples(0).kind()) == 7);
  CHECK(std::isnan(w.samples(0).value()));
  CHECK(w.samples(1).kind() == v1::COUNTER);
  CHECK(std::isinf(w.samples(1).value()));
  CHECK(w.samples(1).value() > 0);
  CHECK(std::isinf(w.samples(2).value()));
  CHECK(w.samples(2).value() < 0);
  CHECK(w.samples(3).value() == 1.5);

  auto h = decode_json_ok(R"({"hello":{"producerId":"p","protocolVersion":"1"}})");
  CHECK(h.hello().protocol_version() == 1);

  // Absent fields and null are defaults.
  auto n = decode_json_ok(R"({"write":{"sequence":null}})");
  REQUIRE(n.has_write());
  CHECK(n.write().sequence() == 0);
}

TEST_CASE("decode rejects JSON the protocol calls malformed", "[codec]") {
  // Bare NaN/Infinity tokens and numbers beyond the double range are not JSON.
  decode_json_error(R"({"write":{"samples":[{"value":NaN}]}})");
  decode_json_error(R"({"write":{"samples":[{"value":Infinity}]}})");
  decode_json_error(R"({"write":{"samples":[{"value":1e400}]}})");
  // Two requests in one frame.
  decode_json_error(R"({"ping":{},"hello":{"producerId":"p"}})");
  // Trailing garbage.
  decode_json_error(R"({"ping":{}} x)");
}

TEST_CASE("decode rejects malformed JSON", "[codec]") {
  auto error = decode_json_error(R"({"hello":)");
  CHECK_THAT(error, Catch::Contains("JSON"));
  decode_json_error("");
  decode_json_error("not json");
  decode_json_error(R"([1,2,3])");
  decode_json_error(R"({"write":{"sequence":"abc"}})");
  decode_json_error(R"({"write":{"sequence":-1}})");
  decode_json_error(R"({"write":{"samples":[{"value":"x"}]}})");
}

TEST_CASE("decode rejects unknown JSON fields", "[codec]") {
  decode_json_error(R"({"hello":{"producerId":"p","extra":1}})");
  decode_json_error(R"({"goodbye":{}})");
  decode_json_error(R"({"write":{"sequence":"1","samples":[{"name":"up","colour":"red"}]}})");
}

TEST_CASE("decode rejects unknown enum names", "[codec]") {
  decode_json_error(
    R"({"write":{"sequence":"1","samples":[{"name":"up","kind":"SUMMARY"}]}})");
  decode_json_error(
    R"({"write":{"sequence":"1","samples":[{"name":"up","counterMode":"RATE"}]}})");
}

TEST_CASE("encode JSON uses lowerCamelCase and prints default values", "[codec]") {
  v1::ServerFrame frame;
  auto* ack = frame.mutable_ack();
  ack->set_sequence(7);
  ack->set_accepted(3);
  ack->set_duplicate(false);
  std::string out = "previous contents";
  encode(frame, encoding::json, out);
  INFO(out);
  CHECK_THAT(out, Catch::StartsWith("{"));
  CHECK_THAT(out, Catch::Contains(R"("ack":)"));
  CHECK_THAT(out, Catch::Contains(R"("sequence":"7")"));
  CHECK_THAT(out, Catch::Contains(R"("accepted":3)"));
  CHECK_THAT(out, Catch::Contains(R"("duplicate":false)"));
  CHECK_THAT(out, !Catch::Contains("previous contents"));

  v1::ServerFrame err;
  set_error(err, errc::key_too_long, "too long", 4, 0, 2);
  encode(err, encoding::json, out);
  INFO(out);
  CHECK_THAT(out, Catch::Contains(R"("code":"KEY_TOO_LONG")"));
  CHECK_THAT(out, Catch::Contains(R"("sampleIndex":2)"));
  CHECK_THAT(out, Catch::Contains(R"("requestId":"0")"));
  CHECK_THAT(out, Catch::Contains(R"("retryable":false)"));
  CHECK_THAT(out, !Catch::Contains("sample_index"));
  CHECK_THAT(out, !Catch::Contains("request_id"));

  v1::ServerFrame welcome;
  welcome.mutable_welcome()->set_node("tether-0");
  encode(welcome, encoding::json, out);
  INFO(out);
  CHECK_THAT(out, Catch::Contains(R"("maxFrameBytes":0)"));
  CHECK_THAT(out, Catch::Contains(R"("protocolVersion":0)"));
  CHECK_THAT(out, Catch::Contains(R"("node":"tether-0")"));

  v1::ServerFrame update;
  update.mutable_window_update()->set_request_id(0);
  encode(update, encoding::json, out);
  INFO(out);
  CHECK_THAT(out, Catch::Contains(R"("windowUpdate":)"));
  CHECK_THAT(out, Catch::Contains(R"("series":[])"));
  CHECK_THAT(out, Catch::Contains(R"("windowStartMs":"0")"));

  v1::ServerFrame result;
  auto* qr = result.mutable_query_result();
  qr->set_found(true);
  qr->mutable_series()->set_kind(v1::GAUGE);
  qr->mutable_series()->set_last(std::nan(""));
  encode(result, encoding::json, out);
  INFO(out);
  CHECK_THAT(out, Catch::Contains(R"("queryResult":)"));
  CHECK_THAT(out, Catch::Contains(R"("kind":"GAUGE")"));
  CHECK_THAT(out, Catch::Contains(R"("last":"NaN")"));
  CHECK_THAT(out, Catch::Contains(R"("updatedMs":"0")"));
}

TEST_CASE("encode binary round-trips server frames", "[codec]") {
  v1::ServerFrame frame;
  auto* wu = frame.mutable_window_update();
  wu->set_request_id(11);
  wu->set_window_start_ms(1000);
  wu->set_window_end_ms(2000);
  series_view view;
  view.key = R"(m{a="1"})";
  view.slice = 17;
  view.node = "tether-1";
  view.epoch = 3;
  view.kind = kind::counter;
  view.total = 12.5;
  view.last = 2.5;
  view.min = 1;
  view.max = 4;
  view.sum = 12.5;
  view.count = 5;
  view.updated_ms = 1999;
  to_wire(view, *wu->add_series());

  std::string out = "junk";
  encode(frame, encoding::binary, out);
  v1::ServerFrame back;
  REQUIRE(back.ParseFromString(out));
  REQUIRE(back.has_window_update());
  auto& b = back.window_update();
  CHECK(b.request_id() == 11);
  CHECK(b.window_start_ms() == 1000);
  CHECK(b.window_end_ms() == 2000);
  REQUIRE(b.series_size() == 1);
  auto& s = b.series(0);
  CHECK(s.key() == view.key);
  CHECK(s.slice() == 17);
  CHECK(s.node() == "tether-1");
  CHECK(s.epoch() == 3);
  CHECK(s.kind() == v1::COUNTER);
  CHECK(s.total() == 12.5);
  CHECK(s.last() == 2.5);
  CHECK(s.min() == 1);
  CHECK(s.max() == 4);
  CHECK(s.sum() == 12.5);
  CHECK(s.count() == 5);
  CHECK(s.updated_ms() == 1999);
  CHECK(back.SerializeAsString() == out);

  v1::ServerFrame empty;
  encode(empty, encoding::binary, out);
  CHECK(out.empty()); // replaced, not appended
}

TEST_CASE("set_error fills every field", "[codec]") {
  v1::ServerFrame frame;
  frame.mutable_ack()->set_sequence(1);
  set_error(frame, errc::negative_counter, "sample 3: below zero", 99, 12, 3);
  REQUIRE(frame.has_error());
  CHECK_FALSE(frame.has_ack());
  auto& e = frame.error();
  CHECK(e.code() == v1::NEGATIVE_COUNTER);
  CHECK(e.message() == "sample 3: below zero");
  CHECK(e.sequence() == 99);
  CHECK(e.request_id() == 12);
  CHECK(e.sample_index() == 3);
  CHECK_FALSE(e.retryable());

  v1::ServerFrame defaults;
  set_error(defaults, errc::malformed_frame, "bad");
  CHECK(defaults.error().sequence() == 0);
  CHECK(defaults.error().request_id() == 0);
  CHECK(defaults.error().sample_index() == -1);
}

TEST_CASE("set_error: only UNAVAILABLE is retryable", "[codec]") {
  for (auto code : all_codes) {
    v1::ServerFrame frame;
    set_error(frame, code, "x");
    INFO(to_string_view(code));
    CHECK(static_cast<int>(frame.error().code()) == static_cast<int>(code));
    CHECK(frame.error().retryable() == (code == errc::unavailable));
  }
}

TEST_CASE("to_string_view gives the wire names of error codes", "[codec]") {
  CHECK(to_string_view(errc::none) == "OK");
  CHECK(to_string_view(errc::key_too_long) == "KEY_TOO_LONG");
  CHECK(to_string_view(errc::malformed_frame) == "MALFORMED_FRAME");
  CHECK(to_string_view(errc::sequence_too_old) == "SEQUENCE_TOO_OLD");
  CHECK(to_string_view(errc::kind_conflict) == "KIND_CONFLICT");
  CHECK(to_string_view(errc::unavailable) == "UNAVAILABLE");
  CHECK(to_string_view(errc::internal) == "INTERNAL");
  CHECK(to_string_view(static_cast<errc>(200)) == "UNKNOWN");
  for (auto code : all_codes) {
    auto name = to_string_view(code);
    INFO(static_cast<int>(code));
    CHECK(name == v1::ErrorCode_Name(static_cast<v1::ErrorCode>(code)));
    CHECK(name != "UNKNOWN");
  }
}

TEST_CASE("to_string names kinds in lower case", "[codec]") {
  CHECK(std::string{to_string(kind::counter)} == "counter");
  CHECK(std::string{to_string(kind::gauge)} == "gauge");
  CHECK(std::string{to_string(kind::histogram)} == "histogram");
  CHECK(std::string{to_string(kind::unspecified)} == "unspecified");
}

TEST_CASE("now_ms is wall-clock Unix milliseconds", "[codec]") {
  using namespace std::chrono;
  auto before = duration_cast<milliseconds>(system_clock::now().time_since_epoch())
                  .count();
  auto t = now_ms();
  auto after = duration_cast<milliseconds>(system_clock::now().time_since_epoch())
                 .count();
  CHECK(before <= t);
  CHECK(t <= after);
}

TEST_CASE("set_error sends only valid UTF-8, cut to 1 KiB", "[codec][utf8]") {
  v1::ServerFrame frame;
  set_error(frame, errc::invalid_key, "unknown escape \\\xc3");
  CHECK(frame.error().message() == "unknown escape \\\\xc3");
  std::string binary;
  encode(frame, encoding::binary, binary);
  v1::ServerFrame back;
  CHECK(back.ParseFromString(binary)); // strict decoders refuse invalid UTF-8
  std::string long_message(5000, 'z');
  set_error(frame, errc::invalid_key, long_message);
  CHECK(frame.error().message().size() == 1024 + 3);
}
