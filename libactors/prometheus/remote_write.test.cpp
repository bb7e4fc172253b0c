#include "prometheus/remote_write.hpp"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <snappy.h>

#include <catch2/catch.hpp>

#include "prometheus/remote.pb.h"

using namespace tether::prom;

namespace {

std::string compress(const std::string& raw) {
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

std::string compress(const remote::WriteRequest& request) {
  return compress(request.SerializeAsString());
}

remote::WriteRequest uncompress_request(const std::string& body) {
  std::string raw;
  REQUIRE(snappy::Uncompress(body.data(), body.size(), &raw));
  remote::WriteRequest request;
  REQUIRE(request.ParseFromString(raw));
  return request;
}

void add_label(remote::TimeSeries& ts, const std::string& name,
               const std::string& value) {
  auto* l = ts.add_labels();
  l->set_name(name);
  l->set_value(value);
}

void add_sample(remote::TimeSeries& ts, double value, int64_t timestamp) {
  auto* s = ts.add_samples();
  s->set_value(value);
  s->set_timestamp(timestamp);
}

/// A request with one series `up{job="api"}` and one sample.
remote::WriteRequest minimal_request() {
  remote::WriteRequest request;
  auto* ts = request.add_timeseries();
  add_label(*ts, "__name__", "up");
  add_label(*ts, "job", "api");
  add_sample(*ts, 1, 1000);
  return request;
}

std::vector<label> labels_of(const series_view& s) {
  return {s.labels.begin(), s.labels.end()};
}

std::string label_names(const remote::TimeSeries& ts) {
  std::string out;
  for (auto& l : ts.labels()) {
    out += l.name();
    out += ' ';
  }
  return out;
}

// Protobuf wire encoding written out by hand from the field numbers of the
// remote-write 1.0 specification, independently of remote.proto.
namespace pb {

void varint(std::string& out, uint64_t x) {
  while (x >= 0x80) {
    out += static_cast<char>((x & 0x7F) | 0x80);
    x >>= 7;
  }
  out += static_cast<char>(x);
}

void tag(std::string& out, uint32_t field, uint32_t wire_type) {
  varint(out, (uint64_t{field} << 3) | wire_type);
}

void bytes(std::string& out, uint32_t field, const std::string& value) {
  tag(out, field, 2);
  varint(out, value.size());
  out += value;
}

void fixed64(std::string& out, uint32_t field, double value) {
  tag(out, field, 1);
  char raw[8];
  std::memcpy(raw, &value, 8); // protobuf is little-endian, as is this host
  out.append(raw, 8);
}

void int64(std::string& out, uint32_t field, int64_t value) {
  tag(out, field, 0);
  varint(out, static_cast<uint64_t>(value));
}

std::string label(const std::string& name, const std::string& value) {
  std::string out;
  bytes(out, 1, name);
  bytes(out, 2, value);
  return out;
}

std::string sample(double value, int64_t timestamp) {
  std::string out;
  fixed64(out, 1, value);
  int64(out, 2, timestamp);
  return out;
}

} // namespace pb

} // namespace

TEST_CASE("remote write: encode then decode round trip", "[prometheus]") {
  std::vector<label> labels{{"path", "/x"}, {"instance", "a:1"}, {"empty", ""},
                            {"job", "api"}};
  std::vector<sample> samples{{3, 3000}, {1, 1000}, {2, 2000}};
  std::vector<label> no_labels;
  std::vector<sample> one{{-0.5, -7}};
  std::vector<series_view> series{
    {"http_requests_total", labels, samples},
    {"temp_celsius", no_labels, one},
  };
  std::vector<family_metadata> metadata{
    {"temp_celsius", metric_type::gauge, "Temperature.", "celsius"},
    {"http_requests_total", metric_type::counter, "Requests.", ""},
    {"latency_seconds", metric_type::histogram, "", ""},
  };
  write_encoder encoder;
  std::string body;
  auto enc = encode_write_request(series, metadata, encoder, body);
  REQUIRE(enc.ok());
  REQUIRE(enc.headers.size() == 3);
  CHECK(enc.headers[0].name == "Content-Encoding");
  CHECK(enc.headers[0].value == "snappy");
  CHECK(enc.headers[1].name == "Content-Type");
  CHECK(enc.headers[1].value == "application/x-protobuf");
  CHECK(enc.headers[2].name == "X-Prometheus-Remote-Write-Version");
  CHECK(enc.headers[2].value == "0.1.0");

  write_decoder decoder;
  auto res = decode_write_request(body, decoder);
  INFO(res.error.message);
  REQUIRE(res.ok());
  auto& req = *res.request;
  REQUIRE(req.series.size() == 2);
  CHECK(req.series[0].name == "http_requests_total");
  CHECK(labels_of(req.series[0])
        == std::vector<label>{{"instance", "a:1"}, {"job", "api"}, {"path", "/x"}});
  REQUIRE(req.series[0].samples.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(req.series[0].samples[i].value == static_cast<double>(i + 1));
    CHECK(req.series[0].samples[i].timestamp_ms == static_cast<int64_t>(i + 1) * 1000);
  }
  CHECK(req.series[1].name == "temp_celsius");
  CHECK(req.series[1].labels.empty());
  REQUIRE(req.series[1].samples.size() == 1);
  CHECK(req.series[1].samples[0].value == -0.5);
  CHECK(req.series[1].samples[0].timestamp_ms == -7);

  REQUIRE(req.metadata.size() == 3);
  CHECK(req.metadata[0].family == "http_requests_total"); // sorted by family
  CHECK(req.metadata[1].family == "latency_seconds");
  CHECK(req.metadata[2].family == "temp_celsius");
  auto* temp = req.find_metadata("temp_celsius");
  REQUIRE(temp != nullptr);
  CHECK(temp->type == metric_type::gauge);
  CHECK(temp->help == "Temperature.");
  CHECK(temp->unit == "celsius");
  CHECK(req.find_metadata("nope") == nullptr);
  CHECK(req.metadata_for_series("http_requests_total")->type
        == metric_type::counter);
  CHECK(req.metadata_for_series("latency_seconds_bucket")->type
        == metric_type::histogram);
  CHECK(req.metadata_for_series("latency_seconds_count")->type
        == metric_type::histogram);
  CHECK(req.metadata_for_series("temp_celsius_total")->type == metric_type::gauge);
  CHECK(req.metadata_for_series("other_sum") == nullptr);
}

TEST_CASE("remote write: encoded labels are sorted in byte order, samples by time",
          "[prometheus]") {
  std::vector<label> labels{{"zone", "z"}, {"Alpha", "A"}, {"job", "j"},
                            {"gone", ""}};
  std::vector<sample> samples{{2, 20}, {1, 10}, {3, 20}};
  std::vector<series_view> series{{"m", labels, samples}};
  write_encoder encoder;
  std::string body;
  REQUIRE(encoder.encode(series, {}, body).ok());
  auto request = uncompress_request(body);
  REQUIRE(request.timeseries_size() == 1);
  auto& ts = request.timeseries(0);
  // 'A' (0x41) sorts before '_' (0x5F); empty values are not sent.
  CHECK(label_names(ts) == "Alpha __name__ job zone ");
  CHECK(ts.labels(1).value() == "m");
  REQUIRE(ts.samples_size() == 3);
  CHECK(ts.samples(0).timestamp() == 10);
  CHECK(ts.samples(1).value() == 2); // stable: equal timestamps keep their order
  CHECK(ts.samples(2).value() == 3);
  CHECK(request.metadata_size() == 0);
}

TEST_CASE("remote write: decode a request built with the generated classes",
          "[prometheus]") {
  remote::WriteRequest request;
  auto* a = request.add_timeseries();
  add_label(*a, "job", "node");
  add_label(*a, "instance", "h:9100");
  add_label(*a, "__name__", "node_load1"); // any order is accepted
  add_sample(*a, 0.25, 1700000000000);
  add_sample(*a, stale_marker(), 1700000015000);
  auto* b = request.add_timeseries();
  add_label(*b, "__name__", "up");
  auto* md = request.add_metadata();
  md->set_type(remote::MetricMetadata::SUMMARY);
  md->set_metric_family_name("rpc_seconds");
  md->set_help("RPC latency.");
  md->set_unit("seconds");

  write_decoder decoder;
  auto res = decoder.decode(compress(request));
  INFO(res.error.message);
  REQUIRE(res.ok());
  auto& req = *res.request;
  REQUIRE(req.series.size() == 2);
  CHECK(req.series[0].name == "node_load1");
  CHECK(labels_of(req.series[0])
        == std::vector<label>{{"instance", "h:9100"}, {"job", "node"}});
  REQUIRE(req.series[0].samples.size() == 2);
  CHECK(req.series[0].samples[0].value == 0.25);
  CHECK(req.series[0].samples[0].timestamp_ms == 1700000000000);
  CHECK(std::isnan(req.series[0].samples[1].value));
  CHECK(is_stale_marker(req.series[0].samples[1].value));
  CHECK_FALSE(is_stale_marker(std::nan("")));
  CHECK(req.series[1].name == "up");
  CHECK(req.series[1].samples.empty());
  REQUIRE(req.metadata.size() == 1);
  CHECK(req.metadata[0].type == metric_type::summary);
  CHECK(req.metadata[0].family == "rpc_seconds");
  CHECK(req.metadata[0].help == "RPC latency.");
  CHECK(req.metadata[0].unit == "seconds");
}

TEST_CASE("remote write: decode bytes written from the specification's field numbers",
          "[prometheus]") {
  std::string ts;
  pb::bytes(ts, 1, pb::label("__name__", "cpu_seconds_total"));
  pb::bytes(ts, 1, pb::label("mode", "idle"));
  pb::bytes(ts, 2, pb::sample(12.5, 1000));
  pb::bytes(ts, 3, "\x0a\x00"); // an exemplar: skipped
  pb::bytes(ts, 2, pb::sample(13, 2000));
  std::string md;
  pb::int64(md, 1, 1); // COUNTER
  pb::bytes(md, 2, "cpu_seconds_total");
  pb::bytes(md, 4, "CPU time.");
  pb::bytes(md, 5, "seconds");
  std::string odd_md;
  pb::int64(odd_md, 1, 42); // a type this version does not know
  pb::bytes(odd_md, 2, "future");
  std::string raw;
  pb::bytes(raw, 1, ts);
  pb::bytes(raw, 3, md);
  pb::bytes(raw, 3, odd_md);
  pb::bytes(raw, 9, "unknown field"); // skipped

  write_decoder decoder;
  auto res = decoder.decode(compress(raw));
  INFO(res.error.message);
  REQUIRE(res.ok());
  auto& req = *res.request;
  REQUIRE(req.series.size() == 1);
  CHECK(req.series[0].name == "cpu_seconds_total");
  CHECK(labels_of(req.series[0]) == std::vector<label>{{"mode", "idle"}});
  REQUIRE(req.series[0].samples.size() == 2);
  CHECK(req.series[0].samples[0].value == 12.5);
  CHECK(req.series[0].samples[0].timestamp_ms == 1000);
  CHECK(req.series[0].samples[1].value == 13);
  CHECK(req.series[0].samples[1].timestamp_ms == 2000);
  REQUIRE(req.metadata.size() == 2);
  CHECK(req.find_metadata("cpu_seconds_total")->type == metric_type::counter);
  CHECK(req.find_metadata("cpu_seconds_total")->help == "CPU time.");
  CHECK(req.find_metadata("cpu_seconds_total")->unit == "seconds");
  CHECK(req.find_metadata("future")->type == metric_type::unknown);

  SECTION("and the encoder writes the same field numbers") {
    std::vector<label> labels{{"mode", "idle"}};
    std::vector<sample> samples{{12.5, 1000}, {13, 2000}};
    std::vector<series_view> series{{"cpu_seconds_total", labels, samples}};
    std::vector<family_metadata> metadata{
      {"cpu_seconds_total", metric_type::counter, "CPU time.", "seconds"}};
    std::string expected_ts;
    pb::bytes(expected_ts, 1, pb::label("__name__", "cpu_seconds_total"));
    pb::bytes(expected_ts, 1, pb::label("mode", "idle"));
    pb::bytes(expected_ts, 2, pb::sample(12.5, 1000));
    pb::bytes(expected_ts, 2, pb::sample(13, 2000));
    std::string expected;
    pb::bytes(expected, 1, expected_ts);
    pb::bytes(expected, 3, md);
    write_encoder encoder;
    std::string body;
    REQUIRE(encoder.encode(series, metadata, body).ok());
    std::string actual;
    REQUIRE(snappy::Uncompress(body.data(), body.size(), &actual));
    CHECK(actual == expected);
  }
}

TEST_CASE("remote write: every decode error", "[prometheus]") {
  write_decoder decoder;
  auto check_error = [&](const std::string& body, errc code) {
    auto res = decoder.decode(body);
    INFO(res.error.message);
    CHECK_FALSE(res.ok());
    CHECK(res.request == nullptr);
    CHECK(res.error.code == code);
    CHECK_FALSE(res.error.message.empty());
    return res.error.message;
  };
  auto with_series = [](std::vector<std::pair<std::string, std::string>> labels) {
    remote::WriteRequest request;
    auto* ts = request.add_timeseries();
    for (auto& [name, value] : labels)
      add_label(*ts, name, value);
    add_sample(*ts, 1, 1);
    return compress(request);
  };

  SECTION("empty body") {
    check_error("", errc::bad_compression);
  }
  SECTION("not snappy at all") {
    check_error("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", errc::bad_compression);
  }
  SECTION("uncompressed protobuf sent without snappy") {
    auto raw = minimal_request().SerializeAsString();
    auto res = decoder.decode(raw);
    CHECK_FALSE(res.ok());
    CHECK_FALSE(res.error.message.empty());
  }
  SECTION("truncated snappy data") {
    auto body = compress(minimal_request());
    body.resize(body.size() - 3);
    check_error(body, errc::bad_compression);
  }
  SECTION("a length header that claims more than the body can hold") {
    // 32 MiB claimed (varint 0x80 0x80 0x80 0x10) by a 6-byte body: refused before
    // anything is allocated for it.
    auto msg = check_error(std::string("\x80\x80\x80\x10\x00\x00", 6),
                           errc::bad_compression);
    CHECK(msg.find("33554432") != std::string::npos);
  }
  SECTION("the most compressible body still decodes") {
    // Zeros compress about as well as snappy can (64 bytes from 3): within the bound.
    std::string zeros(4 << 20, '\0');
    std::string body;
    snappy::Compress(zeros.data(), zeros.size(), &body);
    INFO("ratio " << double(zeros.size()) / double(body.size()));
    auto res = decoder.decode(body);
    CHECK(res.error.code != errc::bad_compression);
  }
  SECTION("snappy framed stream format instead of block format") {
    check_error(std::string("\xff\x06\x00\x00sNaPpY", 10), errc::bad_compression);
  }
  SECTION("not a WriteRequest") {
    check_error(compress(std::string("\x0a\xff\xff\xff\x0f", 5)), errc::bad_protobuf);
    check_error(compress(std::string("\x0f", 1)), errc::bad_protobuf);
  }
  SECTION("series without __name__") {
    auto msg = check_error(with_series({{"job", "api"}}), errc::missing_name);
    CHECK(msg.find("series 0") != std::string::npos);
  }
  SECTION("series with an empty __name__") {
    check_error(with_series({{"__name__", ""}, {"job", "api"}}), errc::missing_name);
  }
  SECTION("__name__ twice") {
    check_error(with_series({{"__name__", "a"}, {"__name__", "b"}}),
                errc::duplicate_label);
  }
  SECTION("a label name twice") {
    auto msg = check_error(with_series({{"__name__", "a"}, {"job", "x"},
                                        {"zone", "z"}, {"job", "y"}}),
                           errc::duplicate_label);
    CHECK(msg.find("\"job\"") != std::string::npos);
  }
  SECTION("a label with an empty name") {
    check_error(with_series({{"__name__", "a"}, {"", "x"}}), errc::empty_label_name);
  }
  SECTION("label value that is not UTF-8") {
    check_error(with_series({{"__name__", "a"}, {"job", "\xc3\x28"}}),
                errc::invalid_utf8);
  }
  SECTION("metric name that is not UTF-8 (a surrogate)") {
    check_error(with_series({{"__name__", "\xed\xa0\x80"}}), errc::invalid_utf8);
  }
  SECTION("label name that is not UTF-8 (overlong)") {
    check_error(with_series({{"__name__", "a"}, {"\xc0\xaf", "x"}}),
                errc::invalid_utf8);
  }
  SECTION("metadata that is not UTF-8") {
    auto request = minimal_request();
    auto* md = request.add_metadata();
    md->set_metric_family_name("up");
    md->set_help("\xe2\x82"); // truncated sequence
    check_error(compress(request), errc::invalid_utf8);
  }
  SECTION("the second series is at fault") {
    auto request = minimal_request();
    add_label(*request.add_timeseries(), "job", "x");
    auto msg = check_error(compress(request), errc::missing_name);
    CHECK(msg.find("series 1") != std::string::npos);
  }
  SECTION("the decoder is usable after an error") {
    check_error(with_series({{"job", "api"}}), errc::missing_name);
    auto res = decoder.decode(compress(minimal_request()));
    REQUIRE(res.ok());
    REQUIRE(res.request->series.size() == 1);
    CHECK(res.request->series[0].name == "up");
  }
  CHECK(to_string_view(errc::bad_compression) == "bad_compression");
}

TEST_CASE("remote write: uncompressed size limit", "[prometheus]") {
  auto raw = minimal_request().SerializeAsString();
  auto body = compress(raw);
  SECTION("a body exactly at the limit is accepted") {
    write_decoder decoder{decode_options{raw.size()}};
    CHECK(decoder.decode(body).ok());
  }
  SECTION("one byte over the limit is refused") {
    write_decoder decoder{decode_options{raw.size() - 1}};
    auto res = decoder.decode(body);
    CHECK(res.error.code == errc::too_large);
    CHECK(res.error.message.find(std::to_string(raw.size())) != std::string::npos);
  }
  SECTION("the announced length is checked before decompressing") {
    // A snappy header announcing 4 GiB - 1 bytes followed by almost nothing: refused
    // as too large under the default limit, without trying to allocate 4 GiB.
    std::string bomb;
    pb::varint(bomb, 0xFFFFFFFFu);
    bomb += std::string("\x00\x61", 2);
    write_decoder decoder;
    CHECK(decoder.options().max_uncompressed_bytes == 32u * 1024 * 1024);
    CHECK(decoder.decode(bomb).error.code == errc::too_large);
  }
  SECTION("a large compressible body over the default limit") {
    remote::WriteRequest request;
    auto* ts = request.add_timeseries();
    add_label(*ts, "__name__", "big");
    add_label(*ts, "pad", std::string(33u << 20, 'x'));
    write_decoder decoder;
    CHECK(decoder.decode(compress(request)).error.code == errc::too_large);
  }
}

TEST_CASE("remote write: decoder reuse keeps results independent", "[prometheus]") {
  write_decoder decoder;
  remote::WriteRequest big;
  for (int i = 0; i < 50; ++i) {
    auto* ts = big.add_timeseries();
    add_label(*ts, "__name__", "m" + std::to_string(i));
    add_label(*ts, "i", std::to_string(i));
    for (int k = 0; k < 5; ++k)
      add_sample(*ts, i * 10 + k, k);
  }
  auto first = decoder.decode(compress(big));
  REQUIRE(first.ok());
  REQUIRE(first.request->series.size() == 50);
  CHECK(first.request->series[49].name == "m49");
  CHECK(first.request->series[49].samples[4].value == 494);
  auto second = decoder.decode(compress(minimal_request()));
  REQUIRE(second.ok());
  REQUIRE(second.request->series.size() == 1);
  CHECK(second.request->series[0].name == "up");
  CHECK(labels_of(second.request->series[0]) == std::vector<label>{{"job", "api"}});
  REQUIRE(second.request->series[0].samples.size() == 1);
  CHECK(second.request->series[0].samples[0].timestamp_ms == 1000);
}

TEST_CASE("remote write: every encode error leaves the body alone", "[prometheus]") {
  write_encoder encoder;
  std::string body = "previous";
  std::vector<sample> samples{{1, 1}};
  auto check_error = [&](std::string_view name, std::vector<label> labels, errc code) {
    std::vector<series_view> series{{"ok", {}, samples}, {name, labels, samples}};
    auto res = encoder.encode(series, {}, body);
    INFO(res.error.message);
    CHECK_FALSE(res.ok());
    CHECK(res.error.code == code);
    CHECK(res.error.message.find("series 1") != std::string::npos);
    CHECK(res.headers.empty());
    CHECK(body == "previous");
  };
  check_error("", {}, errc::missing_name);
  check_error("m", {{"__name__", "x"}}, errc::duplicate_label);
  check_error("m", {{"a", "1"}, {"b", "2"}, {"a", "3"}}, errc::duplicate_label);
  check_error("m", {{"", "1"}}, errc::empty_label_name);
  check_error("m", {{"a", "\xff"}}, errc::invalid_utf8);
  check_error("\x80", {}, errc::invalid_utf8);

  std::vector<family_metadata> metadata{{"m", metric_type::gauge, "\xc1\xbf", ""}};
  std::vector<series_view> series{{"m", {}, samples}};
  auto res = encoder.encode(series, metadata, body);
  CHECK(res.error.code == errc::invalid_utf8);
  CHECK(body == "previous");

  // Still usable afterwards.
  REQUIRE(encoder.encode(series, {}, body).ok());
  write_decoder decoder;
  auto dec = decoder.decode(body);
  REQUIRE(dec.ok());
  REQUIRE(dec.request->series.size() == 1);
  CHECK(dec.request->series[0].name == "m");
}

TEST_CASE("remote write: stale markers survive a round trip bit for bit",
          "[prometheus]") {
  std::vector<sample> samples{{stale_marker(), 5}, {std::nan(""), 6}};
  std::vector<series_view> series{{"gone", {}, samples}};
  write_encoder encoder;
  std::string body;
  REQUIRE(encoder.encode(series, {}, body).ok());
  write_decoder decoder;
  auto res = decoder.decode(body);
  REQUIRE(res.ok());
  auto& s = res.request->series[0].samples;
  CHECK(is_stale_marker(s[0].value));
  CHECK(std::isnan(s[1].value));
  CHECK_FALSE(is_stale_marker(s[1].value));
}

TEST_CASE("remote write: counts are checked before the request is parsed",
          "[prometheus][limits]") {
  decode_options opts;
  opts.max_series = 100;
  opts.max_samples = 10;
  opts.max_labels_per_series = 3;
  write_decoder decoder{opts};
  SECTION("empty series beyond the limit") {
    std::string raw;
    for (int i = 0; i < 1000; ++i)
      raw += std::string("\x0a\x00", 2); // an empty TimeSeries
    auto res = decoder.decode(compress(raw));
    CHECK(res.error.code == errc::too_many_series);
    CHECK(res.error.message.find("1000 series") != std::string::npos);
  }
  SECTION("samples beyond the limit, over all series") {
    remote::WriteRequest req;
    for (int s = 0; s < 3; ++s) {
      auto* ts = req.add_timeseries();
      auto* l = ts->add_labels();
      l->set_name("__name__");
      l->set_value("up");
      for (int i = 0; i < 4; ++i)
        ts->add_samples()->set_value(i);
    }
    CHECK(decoder.decode(compress(req)).error.code == errc::too_many_samples);
  }
  SECTION("labels of one series beyond the limit") {
    remote::WriteRequest req;
    auto* ts = req.add_timeseries();
    for (int i = 0; i < 4; ++i) {
      auto* l = ts->add_labels();
      l->set_name("l" + std::to_string(i));
      l->set_value("v");
    }
    CHECK(decoder.decode(compress(req)).error.code == errc::too_many_labels);
  }
  SECTION("truncated wire format is refused by the count pass") {
    CHECK(decoder.decode(compress(std::string("\x0a\x05\x0a", 3))).error.code
          == errc::bad_protobuf);
  }
  SECTION("a request within the limits still decodes after a refused one") {
    CHECK(decoder.decode(compress(std::string(600, '\0'))).error.code
          == errc::bad_protobuf);
    CHECK(decoder.decode(compress(minimal_request())).ok());
  }
}

TEST_CASE("remote write: native histograms are refused, not dropped", "[prometheus]") {
  std::string ts;
  pb::bytes(ts, 1, pb::label("__name__", "latency_seconds"));
  pb::bytes(ts, 2, pb::sample(1, 1000));
  pb::bytes(ts, 4, "\x08\x01"); // a native histogram
  std::string raw;
  pb::bytes(raw, 1, ts);
  write_decoder decoder;
  auto res = decoder.decode(compress(raw));
  REQUIRE_FALSE(res.ok());
  CHECK(res.error.code == errc::native_histograms);
  CHECK(res.error.message.find("send_native_histograms") != std::string::npos);
}

TEST_CASE("remote write: media types other than 1.0's are refused", "[prometheus]") {
  CHECK_FALSE(check_media_type("", ""));
  CHECK_FALSE(check_media_type("application/x-protobuf", "snappy"));
  CHECK_FALSE(check_media_type("application/x-protobuf;proto=prometheus.WriteRequest",
                               "snappy"));
  CHECK_FALSE(check_media_type("Application/X-Protobuf ; proto=prometheus.WriteRequest",
                               "SNAPPY"));
  auto v2 = check_media_type("application/x-protobuf;proto=io.prometheus.write.v2.Request",
                             "snappy");
  CHECK(v2.code == errc::unsupported_media_type);
  CHECK(v2.message.find("io.prometheus.write.v2.Request") != std::string::npos);
  CHECK(check_media_type("application/json", "").code == errc::unsupported_media_type);
  CHECK(check_media_type("application/x-protobuf", "gzip").code
        == errc::unsupported_media_type);
}
