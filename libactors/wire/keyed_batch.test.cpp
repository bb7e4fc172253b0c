#include "wire/keyed_batch.hpp"

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "keys/slicing.hpp"
#include "rules/rule_set.hpp"
#include "tether/errc.hpp"
#include "wire/tether.pb.h"

namespace Catch {
template <>
struct StringMaker<tether::errc> {
  static std::string convert(tether::errc code) {
    return std::string{tether::to_string_view(code)};
  }
};
} // namespace Catch

using namespace tether;
using namespace tether::wire;

namespace {

constexpr uint32_t slice_count = 64;
constexpr int64_t now = 1'700'000'000'000;

/// The rule set of a node without rules: every series keeps its own key.
const rules::rule_set& no_rules() {
  static const auto set = rules::rule_set::empty({});
  return *set;
}

/// Parses a rules document and requires success.
std::shared_ptr<const rules::rule_set> parse_rules(std::string_view json,
                                                   const rules::rule_defaults& d = {}) {
  std::string error;
  auto set = rules::rule_set::parse(json, d, error);
  INFO(json << "\n-> " << error);
  REQUIRE(set != nullptr);
  return set;
}

tether::limits small_limits() {
  tether::limits lim;
  lim.max_samples_per_batch = 8;
  lim.max_labels_per_sample = 3;
  lim.max_key_bytes = 64;
  return lim;
}

sample make_sample(std::string name,
                   std::vector<std::pair<std::string, std::string>> labels,
                   tether::kind k, double value, int64_t ts = 0,
                   counter_mode mode = counter_mode::delta) {
  sample s;
  s.name = std::move(name);
  s.labels = std::move(labels);
  s.kind = k;
  s.value = value;
  s.timestamp_ms = ts;
  s.mode = mode;
  return s;
}

/// The protobuf form of the same samples, enum values copied as plain numbers.
v1::Write to_proto(uint64_t sequence, const std::vector<sample>& xs) {
  v1::Write w;
  w.set_sequence(sequence);
  for (auto& x : xs) {
    auto* s = w.add_samples();
    s->set_name(x.name);
    for (auto& [name, value] : x.labels) {
      auto* l = s->add_labels();
      l->set_name(name);
      l->set_value(value);
    }
    s->set_kind(static_cast<v1::Kind>(static_cast<int>(x.kind)));
    s->set_value(x.value);
    s->set_timestamp_ms(x.timestamp_ms);
    s->set_counter_mode(static_cast<v1::CounterMode>(static_cast<int>(x.mode)));
  }
  return w;
}

/// Six valid samples of every kind.
std::vector<sample> valid_batch() {
  return {
    make_sample("requests_total", {{"code", "200"}}, kind::counter, 1),
    make_sample("temperature", {{"room", "lab"}}, kind::gauge, -3.5),
    make_sample("latency_seconds", {}, kind::histogram, 0.25),
    make_sample("bytes_total", {{"dir", "in"}}, kind::counter, 1000, 5,
                counter_mode::cumulative),
    make_sample("up", {}, kind::gauge, 1),
    make_sample("errors_total", {{"code", "500"}}, kind::counter, 0),
  };
}

/// Keys a batch both as embedding samples and as a protobuf write; both paths must
/// give the same outcome.
struct both_paths {
  batch_error from_samples;
  batch_error from_proto;
  keyed_batch out_samples;
  keyed_batch out_proto;

  both_paths(uint64_t sequence, const std::vector<sample>& xs,
             tether::limits lim = small_limits(),
             const rules::rule_set& rules = no_rules()) {
    batch_keyer a{lim, slice_count};
    from_samples = a.key(sequence, xs, now, rules, out_samples);
    batch_keyer b{lim, slice_count};
    from_proto = b.key(to_proto(sequence, xs), now, rules, out_proto);
  }
};

void require_rejected(const std::vector<sample>& xs, errc code, int32_t index,
                      uint64_t sequence = 1, tether::limits lim = small_limits(),
                      const rules::rule_set& rules = no_rules()) {
  both_paths r{sequence, xs, lim, rules};
  for (auto* err : {&r.from_samples, &r.from_proto}) {
    INFO((err == &r.from_samples ? "samples: " : "proto: ") << err->message);
    CHECK(err->code == code);
    CHECK(err->index == index);
    if (err->code != code)
      continue;
    if (index >= 0)
      CHECK_THAT(err->message,
                 Catch::StartsWith("sample " + std::to_string(index) + ": "));
    else
      CHECK_FALSE(err->message.empty());
  }
}

void check_keyed(const keyed_batch& out, const std::vector<std::string>& keys) {
  REQUIRE(out.samples.size() == keys.size());
  size_t offset = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    auto& s = out.samples[i];
    INFO("sample " << i);
    CHECK(out.key(s) == keys[i]);
    CHECK(s.key_offset == offset);
    CHECK(s.key_size == keys[i].size());
    CHECK(s.hash == keys::key_hash(keys[i]));
    CHECK(s.slice == keys::slice_of(s.hash, slice_count));
    offset += keys[i].size();
  }
  CHECK(out.keys.size() == offset);
}

} // namespace

TEST_CASE("batch_keyer keys a protobuf write", "[keyed_batch]") {
  auto xs = valid_batch();
  // Labels out of order, one with an empty value.
  xs[0].labels = {{"method", "GET"}, {"code", "200"}, {"zone", ""}};
  // A gauge claiming cumulative mode: the mode is meaningless for it.
  xs[1].mode = counter_mode::cumulative;
  xs[4].timestamp_ms = 42;
  auto w = to_proto(7, xs);

  batch_keyer keyer{small_limits(), slice_count};
  keyed_batch out;
  out.producer = "producer-a";
  auto err = keyer.key(w, now, no_rules(), out);
  INFO(err.message);
  REQUIRE_FALSE(err);
  CHECK(err.code == errc::none);
  CHECK(err.index == -1);

  CHECK(out.producer == "producer-a"); // left as it was
  CHECK(out.sequence == 7);
  check_keyed(out, {
                     R"(requests_total{code="200",method="GET"})",
                     R"(temperature{room="lab"})",
                     "latency_seconds",
                     R"(bytes_total{dir="in"})",
                     "up",
                     R"(errors_total{code="500"})",
                   });

  CHECK(out.samples[0].kind == kind::counter);
  CHECK(out.samples[1].kind == kind::gauge);
  CHECK(out.samples[2].kind == kind::histogram);
  CHECK(out.samples[3].kind == kind::counter);

  CHECK(out.samples[0].mode == counter_mode::delta);
  CHECK(out.samples[1].mode == counter_mode::delta); // not kept for gauges
  CHECK(out.samples[3].mode == counter_mode::cumulative);

  CHECK(out.samples[1].value == -3.5);
  CHECK(out.samples[3].value == 1000);

  CHECK(out.samples[0].timestamp_ms == now); // 0 means "received now"
  CHECK(out.samples[3].timestamp_ms == 5);
  CHECK(out.samples[4].timestamp_ms == 42);
}

TEST_CASE("batch_keyer keys embedding samples", "[keyed_batch]") {
  auto xs = valid_batch();
  xs[2].labels = {{"b", "2"}, {"a", "1"}};
  xs[2].mode = counter_mode::cumulative; // histogram: ignored
  batch_keyer keyer{small_limits(), slice_count};
  keyed_batch out;
  auto err = keyer.key(3, xs, now, no_rules(), out);
  INFO(err.message);
  REQUIRE_FALSE(err);
  CHECK(out.sequence == 3);
  check_keyed(out, {
                     R"(requests_total{code="200"})",
                     R"(temperature{room="lab"})",
                     R"(latency_seconds{a="1",b="2"})",
                     R"(bytes_total{dir="in"})",
                     "up",
                     R"(errors_total{code="500"})",
                   });
  CHECK(out.samples[2].mode == counter_mode::delta);
  CHECK(out.samples[3].mode == counter_mode::cumulative);
  CHECK(out.samples[2].timestamp_ms == now);
  CHECK(out.samples[3].timestamp_ms == 5);
}

TEST_CASE("batch_keyer: both paths give identical keyed batches", "[keyed_batch]") {
  auto xs = valid_batch();
  xs[0].labels = {{"z", "1"}, {"a", "q\"uo\\te\n"}};
  both_paths r{9, xs};
  REQUIRE_FALSE(r.from_samples);
  REQUIRE_FALSE(r.from_proto);
  CHECK(r.out_samples.keys == r.out_proto.keys);
  REQUIRE(r.out_samples.samples.size() == r.out_proto.samples.size());
  for (size_t i = 0; i < xs.size(); ++i) {
    auto& a = r.out_samples.samples[i];
    auto& b = r.out_proto.samples[i];
    CHECK(a.hash == b.hash);
    CHECK(a.input_hash == b.input_hash);
    CHECK(a.window_ms == b.window_ms);
    CHECK(a.rule == b.rule);
    CHECK(a.key_offset == b.key_offset);
    CHECK(a.key_size == b.key_size);
    CHECK(a.slice == b.slice);
    CHECK(a.kind == b.kind);
    CHECK(a.mode == b.mode);
    CHECK(a.value == b.value);
    CHECK(a.timestamp_ms == b.timestamp_ms);
  }
  CHECK(r.out_samples.key(r.out_samples.samples[0])
        == R"(requests_total{a="q\"uo\\te\n",z="1"})");
}

TEST_CASE("batch_keyer reuse starts every batch from scratch", "[keyed_batch]") {
  batch_keyer keyer{small_limits(), slice_count};
  keyed_batch out;
  REQUIRE_FALSE(keyer.key(1, valid_batch(), now, no_rules(), out));
  std::vector<sample> one{make_sample("single", {{"a", "1"}}, kind::gauge, 2)};
  REQUIRE_FALSE(keyer.key(2, one, now, no_rules(), out));
  CHECK(out.sequence == 2);
  check_keyed(out, {R"(single{a="1"})"});
}

TEST_CASE("batch_keyer drops empty label values before the label limit",
          "[keyed_batch]") {
  auto xs = valid_batch();
  // Five labels, two empty: three remain, exactly the limit.
  xs[5].labels = {{"e", "5"}, {"d", ""}, {"c", "3"}, {"b", ""}, {"a", "1"}};
  both_paths r{1, xs};
  INFO(r.from_samples.message);
  REQUIRE_FALSE(r.from_samples);
  REQUIRE_FALSE(r.from_proto);
  CHECK(r.out_samples.key(r.out_samples.samples[5])
        == R"(errors_total{a="1",c="3",e="5"})");
  CHECK(r.out_proto.key(r.out_proto.samples[5]) == R"(errors_total{a="1",c="3",e="5"})");
}

TEST_CASE("batch_keyer checks the names of empty-valued labels too",
          "[keyed_batch]") {
  // docs/protocol.md section 5: every label name must be valid and no name may repeat;
  // only the label count is taken after empty-valued labels are dropped.
  auto xs = valid_batch();
  xs[5].labels = {{"__reserved", ""}, {"a", "1"}};
  require_rejected(xs, errc::invalid_label_name, 5);

  xs = valid_batch();
  xs[5].labels = {{"a", ""}, {"a", "1"}};
  require_rejected(xs, errc::duplicate_label, 5);
}

TEST_CASE("batch_keyer accepts the limits exactly", "[keyed_batch]") {
  std::vector<sample> xs(8, make_sample("m", {}, kind::gauge, 1));
  CHECK_FALSE(both_paths{1, xs}.from_samples);
  CHECK_FALSE(both_paths{1, xs}.from_proto);

  // A 64-byte key: name plus {a="1"} (7 bytes).
  std::vector<sample> long_key{
    make_sample(std::string(57, 'k'), {{"a", "1"}}, kind::gauge, 1)};
  both_paths r{1, long_key};
  REQUIRE_FALSE(r.from_samples);
  REQUIRE_FALSE(r.from_proto);
  CHECK(r.out_samples.samples[0].key_size == 64);
}

TEST_CASE("batch_keyer rejects whole-batch errors with index -1", "[keyed_batch]") {
  SECTION("sequence 0") {
    require_rejected(valid_batch(), errc::invalid_sequence, -1, 0);
  }
  SECTION("empty batch") {
    require_rejected({}, errc::empty_batch, -1);
  }
  SECTION("too many samples") {
    std::vector<sample> xs(9, make_sample("m", {}, kind::gauge, 1));
    require_rejected(xs, errc::too_many_samples, -1);
  }
}

TEST_CASE("batch_keyer rejects a bad sample with its class and index",
          "[keyed_batch]") {
  using mutation = std::function<void(sample&)>;
  struct rejection {
    const char* what;
    mutation mutate;
    errc code;
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<rejection> cases{
    {"bad metric name", [](sample& s) { s.name = "9lives"; }, errc::invalid_metric_name},
    {"empty metric name", [](sample& s) { s.name.clear(); }, errc::invalid_metric_name},
    {"bad label name", [](sample& s) { s.labels = {{"bad-name", "x"}}; },
     errc::invalid_label_name},
    {"reserved label name", [](sample& s) { s.labels = {{"a", "1"}, {"__x", "1"}}; },
     errc::invalid_label_name},
    {"duplicate label", [](sample& s) { s.labels = {{"a", "1"}, {"b", "2"}, {"a", "3"}}; },
     errc::duplicate_label},
    {"too many labels",
     [](sample& s) { s.labels = {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}}; },
     errc::too_many_labels},
    {"key too long",
     [](sample& s) {
       s.name = std::string(57, 'k');
       s.labels = {{"a", "12"}}; // 65 bytes
     },
     errc::key_too_long},
    {"key too long through escapes",
     [](sample& s) {
       s.name = std::string(50, 'k');
       s.labels = {{"a", "\"\"\"\"\"\"\"\""}}; // 8 quotes -> 16 bytes escaped
     },
     errc::key_too_long},
    {"kind 0", [](sample& s) { s.kind = kind::unspecified; }, errc::unknown_kind},
    {"kind 7", [](sample& s) { s.kind = static_cast<tether::kind>(7); }, errc::unknown_kind},
    {"counter_mode 2",
     [](sample& s) {
       s.kind = kind::counter;
       s.mode = static_cast<counter_mode>(2);
     },
     errc::unknown_kind},
    {"NaN", [nan](sample& s) { s.value = nan; }, errc::non_finite_value},
    {"+inf", [inf](sample& s) { s.value = inf; }, errc::non_finite_value},
    {"-inf", [inf](sample& s) { s.value = -inf; }, errc::non_finite_value},
    {"negative delta counter",
     [](sample& s) {
       s.kind = kind::counter;
       s.mode = counter_mode::delta;
       s.value = -1;
     },
     errc::negative_counter},
    {"negative cumulative counter",
     [](sample& s) {
       s.kind = kind::counter;
       s.mode = counter_mode::cumulative;
       s.value = -0.5;
     },
     errc::negative_counter},
    {"negative timestamp", [](sample& s) { s.timestamp_ms = -1; },
     errc::invalid_timestamp},
    {"timestamp beyond max_future_ms",
     [](sample& s) { s.timestamp_ms = now + tether::limits{}.max_future_ms + 1; },
     errc::invalid_timestamp},
  };
  auto index = GENERATE(0, 3, 5);
  for (auto& c : cases) {
    auto xs = valid_batch();
    c.mutate(xs[static_cast<size_t>(index)]);
    INFO(c.what << " at sample " << index);
    require_rejected(xs, c.code, index);
  }
}

TEST_CASE("batch_keyer reports the first bad sample", "[keyed_batch]") {
  auto xs = valid_batch();
  xs[5].value = std::numeric_limits<double>::quiet_NaN();
  xs[2].name = "bad name";
  require_rejected(xs, errc::invalid_metric_name, 2);
}

TEST_CASE("batch_keyer accepts values only counters may not have", "[keyed_batch]") {
  std::vector<sample> xs{
    make_sample("g", {}, kind::gauge, -1e300),
    make_sample("h", {}, kind::histogram, -2),
    make_sample("c", {}, kind::counter, 0),
    make_sample("c", {}, kind::counter, 0, 0, counter_mode::cumulative),
  };
  both_paths r{1, xs};
  INFO(r.from_samples.message);
  CHECK_FALSE(r.from_samples);
  CHECK_FALSE(r.from_proto);
}

TEST_CASE("batch_keyer: error messages name the offending value", "[keyed_batch]") {
  batch_keyer keyer{small_limits(), slice_count};
  keyed_batch out;
  auto xs = valid_batch();
  xs[1].labels = {{"room", "a"}, {"room", "b"}};
  auto err = keyer.key(1, xs, now, no_rules(), out);
  CHECK(err.code == errc::duplicate_label);
  CHECK_THAT(err.message, Catch::Contains("'room'"));

  xs = valid_batch();
  xs[4].name = std::string(100, 'x') + "-";
  err = keyer.key(1, xs, now, no_rules(), out);
  CHECK(err.code == errc::invalid_metric_name);
  CHECK_THAT(err.message, Catch::Contains(std::string(64, 'x') + "..."));
  CHECK_THAT(err.message, !Catch::Contains(std::string(65, 'x'))); // cut at 64
}

TEST_CASE("batch_keyer without a matching rule keys each series under its own key",
          "[keyed_batch][rules]") {
  rules::rule_defaults d;
  d.window_ms = 2500;
  auto empty = rules::rule_set::empty(d);
  // A rule for another metric, inheriting the default window.
  auto other = parse_rules(R"({"rules": [{"name": "only_x", "match": "x_total",
                                           "without": ["instance"]}]})",
                           d);
  for (auto* set : {empty.get(), other.get()}) {
    both_paths r{1, valid_batch(), small_limits(), *set};
    INFO(r.from_samples.message);
    REQUIRE_FALSE(r.from_samples);
    REQUIRE_FALSE(r.from_proto);
    for (auto* out : {&r.out_samples, &r.out_proto}) {
      check_keyed(*out, {
                          R"(requests_total{code="200"})",
                          R"(temperature{room="lab"})",
                          "latency_seconds",
                          R"(bytes_total{dir="in"})",
                          "up",
                          R"(errors_total{code="500"})",
                        });
      for (auto& s : out->samples) {
        CHECK(s.input_hash == s.hash);
        CHECK(s.window_ms == 2500);
        CHECK(s.rule == 0);
      }
    }
  }
  CHECK(other->rules().at(0).window_ms == 2500);

  // The default rule set takes the default window length.
  batch_keyer keyer{small_limits(), slice_count};
  keyed_batch out;
  REQUIRE_FALSE(keyer.key(1, valid_batch(), now, no_rules(), out));
  for (auto& s : out.samples)
    CHECK(s.window_ms == no_rules().defaults().window_ms);
}

TEST_CASE("batch_keyer: a 'without' rule folds inputs into one output series",
          "[keyed_batch][rules]") {
  auto set = parse_rules(R"({"rules": [
    {"name": "unrelated", "match": "other_total", "by": ["code"]},
    {"name": "fold", "match": "requests_total", "without": ["instance"],
     "window_ms": 60000}
  ]})");
  std::vector<sample> xs{
    make_sample("requests_total", {{"instance", "a"}, {"code", "200"}}, kind::counter,
                10, 0, counter_mode::cumulative),
    make_sample("requests_total", {{"code", "200"}, {"instance", "b"}}, kind::counter,
                20, 0, counter_mode::cumulative),
    make_sample("requests_total", {{"code", "500"}, {"instance", "a"}}, kind::counter,
                1),
    make_sample("temperature", {{"room", "lab"}}, kind::gauge, 21),
  };
  both_paths r{4, xs, small_limits(), *set};
  INFO(r.from_samples.message);
  REQUIRE_FALSE(r.from_samples);
  REQUIRE_FALSE(r.from_proto);
  for (auto* out : {&r.out_samples, &r.out_proto}) {
    check_keyed(*out, {
                        R"(requests_total{code="200"})",
                        R"(requests_total{code="200"})",
                        R"(requests_total{code="500"})",
                        R"(temperature{room="lab"})",
                      });
    auto& a = out->samples[0];
    auto& b = out->samples[1];
    auto& c = out->samples[2];
    auto& t = out->samples[3];
    // One output series, two inputs told apart by their input hash.
    CHECK(a.hash == b.hash);
    CHECK(a.slice == b.slice);
    CHECK(a.input_hash != b.input_hash);
    CHECK(a.input_hash == keys::key_hash(R"(requests_total{code="200",instance="a"})"));
    CHECK(b.input_hash == keys::key_hash(R"(requests_total{code="200",instance="b"})"));
    CHECK(c.input_hash == keys::key_hash(R"(requests_total{code="500",instance="a"})"));
    CHECK(a.input_hash != a.hash);
    for (auto* s : {&a, &b, &c}) {
      CHECK(s->window_ms == 60000);
      CHECK(s->rule == 2); // 1 + the index of "fold"
      CHECK(s->kind == kind::counter);
    }
    CHECK(a.mode == counter_mode::cumulative);
    CHECK(c.mode == counter_mode::delta);
    CHECK(a.value == 10);
    CHECK(b.value == 20);
    CHECK(a.timestamp_ms == now);
    // The gauge matches no rule.
    CHECK(t.rule == 0);
    CHECK(t.input_hash == t.hash);
    CHECK(t.window_ms == set->defaults().window_ms);
  }
}

TEST_CASE("batch_keyer: a 'by' rule keeps only the listed labels",
          "[keyed_batch][rules]") {
  auto set = parse_rules(R"({"rules": [
    {"name": "by_code", "match": "http_requests_total", "by": ["code", "absent"]}
  ]})");
  std::vector<sample> xs{
    make_sample("http_requests_total",
                {{"method", "GET"}, {"instance", "a"}, {"code", "200"}}, kind::counter,
                1),
    make_sample("http_requests_total", {{"method", "PUT"}, {"instance", "b"}},
                kind::counter, 2),
    make_sample("http_requests_total", {}, kind::counter, 3),
  };
  both_paths r{1, xs, small_limits(), *set};
  INFO(r.from_samples.message);
  REQUIRE_FALSE(r.from_samples);
  REQUIRE_FALSE(r.from_proto);
  for (auto* out : {&r.out_samples, &r.out_proto}) {
    check_keyed(*out, {
                        R"(http_requests_total{code="200"})",
                        "http_requests_total",
                        "http_requests_total",
                      });
    auto& s = out->samples;
    CHECK(s[0].input_hash
          == keys::key_hash(R"(http_requests_total{code="200",instance="a",method="GET"})"));
    CHECK(s[1].input_hash
          == keys::key_hash(R"(http_requests_total{instance="b",method="PUT"})"));
    // Without labels the input key is the output key.
    CHECK(s[2].input_hash == s[2].hash);
    CHECK(s[1].hash == s[2].hash);
    for (auto& x : s) {
      CHECK(x.rule == 1);
      CHECK(x.window_ms == set->defaults().window_ms);
    }
  }
}

TEST_CASE("batch_keyer: a rule's output renames the series", "[keyed_batch][rules]") {
  auto set = parse_rules(R"({"rules": [
    {"name": "by_route", "match": "latency_seconds", "by": ["route"],
     "output": "latency_by_route", "window_ms": 1000},
    {"name": "alive", "match_glob": "up*", "output": "alive"}
  ]})");
  std::vector<sample> xs{
    make_sample("latency_seconds", {{"route", "/a"}, {"pod", "x"}}, kind::histogram,
                0.5, 7),
    make_sample("up", {{"job", "j"}}, kind::gauge, 1),
    make_sample("upstream", {}, kind::gauge, 0),
  };
  both_paths r{1, xs, small_limits(), *set};
  INFO(r.from_samples.message);
  REQUIRE_FALSE(r.from_samples);
  REQUIRE_FALSE(r.from_proto);
  for (auto* out : {&r.out_samples, &r.out_proto}) {
    check_keyed(*out, {R"(latency_by_route{route="/a"})", R"(alive{job="j"})", "alive"});
    auto& s = out->samples;
    CHECK(s[0].input_hash == keys::key_hash(R"(latency_seconds{pod="x",route="/a"})"));
    CHECK(s[0].kind == kind::histogram);
    CHECK(s[0].value == 0.5);
    CHECK(s[0].timestamp_ms == 7);
    CHECK(s[0].window_ms == 1000);
    CHECK(s[0].rule == 1);
    // No label selection: every label is kept, only the name changes.
    CHECK(s[1].input_hash == keys::key_hash(R"(up{job="j"})"));
    CHECK(s[1].rule == 2);
    CHECK(s[2].input_hash == keys::key_hash("upstream"));
    CHECK(s[2].rule == 2);
  }
}

TEST_CASE("batch_keyer: an output key above max_key_bytes names the rule",
          "[keyed_batch][rules]") {
  // small_limits: 64 bytes. Output name + {a="1"} (7 bytes).
  auto set = parse_rules(R"({"rules": [
    {"name": "fits", "match": "short", "output": ")" + std::string(57, 'o') + R"("},
    {"name": "too_long", "match": "m", "output": ")" + std::string(58, 'o') + R"("}
  ]})");
  auto xs = valid_batch();
  xs[4] = make_sample("short", {{"a", "1"}}, kind::gauge, 1);
  {
    both_paths r{1, xs, small_limits(), *set};
    INFO(r.from_samples.message);
    REQUIRE_FALSE(r.from_samples);
    REQUIRE_FALSE(r.from_proto);
    CHECK(r.out_samples.samples[4].key_size == 64);
    CHECK(r.out_samples.key(r.out_samples.samples[4])
          == std::string(57, 'o') + R"({a="1"})");
  }
  xs[3] = make_sample("m", {{"a", "1"}}, kind::gauge, 1); // 8-byte input key
  require_rejected(xs, errc::key_too_long, 3, 1, small_limits(), *set);
  both_paths r{1, xs, small_limits(), *set};
  for (auto* err : {&r.from_samples, &r.from_proto}) {
    CHECK_THAT(err->message, Catch::Contains("rule 'too_long'"));
    CHECK_THAT(err->message, Catch::Contains("65"));
  }
}

TEST_CASE("batch_keyer rejects timestamps beyond max_future_ms", "[keyed_batch]") {
  auto lim = small_limits();
  lim.max_future_ms = 1000;
  auto xs = valid_batch();
  xs[2].timestamp_ms = now + 1000; // exactly at the limit
  xs[3].timestamp_ms = now - 1000000;
  {
    both_paths r{1, xs, lim};
    INFO(r.from_samples.message);
    REQUIRE_FALSE(r.from_samples);
    REQUIRE_FALSE(r.from_proto);
    CHECK(r.out_samples.samples[2].timestamp_ms == now + 1000);
    CHECK(r.out_proto.samples[2].timestamp_ms == now + 1000);
    CHECK(r.out_samples.samples[3].timestamp_ms == now - 1000000);
  }
  xs[5].timestamp_ms = now + 1001;
  require_rejected(xs, errc::invalid_timestamp, 5, 1, lim);
  both_paths r{1, xs, lim};
  CHECK_THAT(r.from_samples.message, Catch::Contains(std::to_string(now + 1001)));
  CHECK_THAT(r.from_proto.message, Catch::Contains("1000 ms ahead"));

  // With no slack, only timestamps up to now pass.
  lim.max_future_ms = 0;
  xs = valid_batch();
  xs[0].timestamp_ms = now;
  CHECK_FALSE(both_paths(1, xs, lim).from_samples);
  xs[0].timestamp_ms = now + 1;
  require_rejected(xs, errc::invalid_timestamp, 0, 1, lim);
}
