#include "wire/write_view.hpp"

#include <cstring>
#include <limits>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "rules/rule_set.hpp"
#include "tether/options.hpp"
#include "wire/keyed_batch.hpp"
#include "wire/tether.pb.h"

using namespace tether;
using namespace tether::wire;

namespace {

constexpr int64_t now = 1'700'000'000'000;

bool same_bits(double a, double b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

/// Whether the view holds exactly what libprotobuf decoded.
bool same(const write_view& a, const v1::Write& b) {
  if (a.sequence != b.sequence() || a.samples.size() != size_t(b.samples_size()))
    return false;
  for (int i = 0; i < b.samples_size(); ++i) {
    auto& x = a.samples[i];
    auto& y = b.samples(i);
    if (x.name != y.name() || x.kind != y.kind() || x.mode != y.counter_mode()
        || !same_bits(x.value, y.value())
        || x.timestamp_ms != y.timestamp_ms()
        || x.label_end - x.label_begin != uint32_t(y.labels_size()))
      return false;
    for (int j = 0; j < y.labels_size(); ++j) {
      auto& l = a.labels[x.label_begin + j];
      if (l.name != y.labels(j).name() || l.value != y.labels(j).value())
        return false;
    }
  }
  return true;
}

v1::ClientFrame example_write() {
  v1::ClientFrame f;
  auto* w = f.mutable_write();
  w->set_sequence(1234567);
  for (int i = 0; i < 5; ++i) {
    auto* s = w->add_samples();
    s->set_name("http_requests_total");
    auto* l = s->add_labels();
    l->set_name("code");
    l->set_value(std::to_string(200 + i));
    l = s->add_labels();
    l->set_name("path");
    l->set_value("/caf\xc3\xa9/" + std::to_string(i)); // UTF-8
    s->set_kind(static_cast<v1::Kind>(1 + i % 3));
    s->set_counter_mode(i == 1 ? v1::CUMULATIVE : v1::DELTA);
    s->set_value(i * 1.5);
    s->set_timestamp_ms(i == 0 ? 0 : now + i);
  }
  w->add_samples(); // a sample with every field at its default
  return f;
}

/// Reads `bytes` both ways; when the reader takes them, libprotobuf must decode the
/// same write.
void check_against_protobuf(const std::string& bytes) {
  write_view view;
  if (!read_write_frame(bytes, view))
    return;
  v1::ClientFrame f;
  REQUIRE(f.ParseFromString(bytes));
  REQUIRE(f.frame_case() == v1::ClientFrame::kWrite);
  REQUIRE(same(view, f.write()));
}

} // namespace

TEST_CASE("a binary write is read in place as libprotobuf decodes it", "[wire]") {
  auto f = example_write();
  auto bytes = f.SerializeAsString();
  write_view view;
  REQUIRE(read_write_frame(bytes, view));
  CHECK(same(view, f.write()));
  CHECK(view.samples[1].mode == 1);
  CHECK(view.samples[2].kind == 3);
  CHECK(view.labels[1].value == "/caf\xc3\xa9/0");
  // The strings are views into the frame: nothing was copied.
  CHECK(view.samples[0].name.data() >= bytes.data());
  CHECK(view.samples[0].name.data() < bytes.data() + bytes.size());

  SECTION("the vectors are reused: a second frame replaces the first") {
    v1::ClientFrame g;
    g.mutable_write()->set_sequence(9);
    g.mutable_write()->add_samples()->set_name("x");
    REQUIRE(read_write_frame(g.SerializeAsString(), view));
    CHECK(view.sequence == 9);
    CHECK(view.samples.size() == 1);
    CHECK(view.labels.empty());
  }
}

TEST_CASE("frames other than plain writes are left to libprotobuf", "[wire]") {
  write_view view;
  v1::ClientFrame hello;
  hello.mutable_hello()->set_producer_id("p");
  CHECK_FALSE(read_write_frame(hello.SerializeAsString(), view));
  v1::ClientFrame ping;
  ping.mutable_ping()->set_nonce(3);
  CHECK_FALSE(read_write_frame(ping.SerializeAsString(), view));
  CHECK_FALSE(read_write_frame("", view));

  auto bytes = example_write().SerializeAsString();
  SECTION("truncated") {
    for (size_t n = 1; n < bytes.size(); ++n)
      CHECK_FALSE(read_write_frame(bytes.substr(0, n), view));
  }
  SECTION("a second write field (libprotobuf merges the two)") {
    CHECK_FALSE(read_write_frame(bytes + bytes, view));
    v1::ClientFrame merged;
    REQUIRE(merged.ParseFromString(bytes + bytes));
    CHECK(merged.write().samples_size() == 12);
  }
  SECTION("an unknown field in a sample (libprotobuf keeps it aside)") {
    v1::Sample s;
    s.set_name("m");
    auto body = s.SerializeAsString() + std::string{"\x38\x01", 2}; // field 7 = 1
    v1::Write w;
    w.set_sequence(1);
    std::string frame = w.SerializeAsString();
    frame += '\x12';
    frame += static_cast<char>(body.size());
    frame += body;
    std::string outer = "\x12";
    outer += static_cast<char>(frame.size());
    outer += frame;
    CHECK_FALSE(read_write_frame(outer, view));
    v1::ClientFrame f;
    CHECK(f.ParseFromString(outer));
  }
  SECTION("a label value that is not UTF-8 (libprotobuf refuses the frame)") {
    auto f = example_write();
    f.mutable_write()->mutable_samples(0)->mutable_labels(0)->set_value("\xc3(");
    std::string raw;
    f.SerializeToString(&raw); // serializing does not check
    CHECK_FALSE(read_write_frame(raw, view));
    v1::ClientFrame g;
    CHECK_FALSE(g.ParseFromString(raw));
  }
}

TEST_CASE("mutated writes: whatever is read in place, libprotobuf decodes alike",
          "[wire]") {
  auto base = example_write().SerializeAsString();
  std::mt19937 rng{7};
  size_t taken = 0;
  for (int round = 0; round < 20000; ++round) {
    auto bytes = base;
    auto edits = 1 + rng() % 4;
    for (uint32_t e = 0; e < edits; ++e) {
      auto at = rng() % bytes.size();
      switch (rng() % 3) {
        case 0:
          bytes[at] = static_cast<char>(rng());
          break;
        case 1:
          bytes.erase(at, 1 + rng() % 3);
          break;
        default:
          bytes.insert(at, 1, static_cast<char>(rng()));
      }
      if (bytes.empty())
        bytes = base;
    }
    write_view view;
    taken += read_write_frame(bytes, view);
    check_against_protobuf(bytes);
  }
  // Many mutations only change a value or a string and are still plain writes.
  CHECK(taken > 500);
}

TEST_CASE("the keyer keys a write read in place as the decoded one", "[wire]") {
  limits lim;
  batch_keyer keyer{lim, 64};
  auto rules = rules::rule_set::empty({});
  auto f = example_write();
  f.mutable_write()->mutable_samples()->RemoveLast(); // the empty sample is an error
  auto bytes = f.SerializeAsString();
  write_view view;
  REQUIRE(read_write_frame(bytes, view));
  keyed_batch a;
  keyed_batch b;
  REQUIRE_FALSE(keyer.key(view, now, *rules, a));
  REQUIRE_FALSE(keyer.key(f.write(), now, *rules, b));
  CHECK(a.sequence == b.sequence);
  CHECK(a.keys == b.keys);
  REQUIRE(a.samples.size() == b.samples.size());
  for (size_t i = 0; i < a.samples.size(); ++i) {
    CHECK(a.samples[i].hash == b.samples[i].hash);
    CHECK(a.samples[i].value == b.samples[i].value);
    CHECK(a.samples[i].timestamp_ms == b.samples[i].timestamp_ms);
    CHECK(a.samples[i].kind == b.samples[i].kind);
    CHECK(a.samples[i].mode == b.samples[i].mode);
  }

  SECTION("and refuses it alike") {
    f.mutable_write()->mutable_samples(3)->set_name("9bad");
    bytes = f.SerializeAsString();
    REQUIRE(read_write_frame(bytes, view));
    auto ea = keyer.key(view, now, *rules, a);
    auto eb = keyer.key(f.write(), now, *rules, b);
    CHECK(ea.code == errc::invalid_metric_name);
    CHECK(ea.code == eb.code);
    CHECK(ea.index == eb.index);
    CHECK(ea.message == eb.message);
  }
}
