#include "series/slice_state.hpp"

#include <string>
#include <unordered_set>
#include <vector>

#include <catch2/catch.hpp>

#include "keys/slicing.hpp"
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
using tether::series::series_entry;
using tether::series::shard_write;
using tether::series::slice_range;
using tether::series::slice_state;

namespace {

constexpr uint32_t slice_id = 7;

/// Builds a shard write by hand, all samples in one slice.
struct write_builder {
  shard_write w;

  write_builder(std::string producer, uint64_t sequence) {
    w.producer = std::move(producer);
    w.sequence = sequence;
  }

  write_builder& add(std::string_view key, tether::kind k, double value,
                     counter_mode mode = counter_mode::delta, int64_t ts = 1) {
    wire::keyed_sample s;
    s.key_offset = static_cast<uint32_t>(w.keys.size());
    s.key_size = static_cast<uint32_t>(key.size());
    w.keys.append(key.data(), key.size());
    s.hash = keys::key_hash(key);
    s.slice = slice_id;
    s.kind = k;
    s.mode = mode;
    s.value = value;
    s.timestamp_ms = ts;
    w.samples.push_back(s);
    return *this;
  }

  /// Every sample as one range.
  slice_range all() const {
    slice_range r;
    r.slice = slice_id;
    r.epoch = 1;
    r.begin = 0;
    r.end = static_cast<uint32_t>(w.samples.size());
    return r;
  }
};

slice_state::apply_result apply(slice_state& st, const write_builder& b,
                                int64_t window = 0) {
  std::vector<series_entry*> touched;
  return st.apply(b.w, b.all(), window, touched);
}

/// A snapshot of the parts of a series that applying samples changes.
struct snapshot {
  tether::kind kind;
  double total;
  double last;
  double sum;
  uint64_t count;

  explicit snapshot(const series_entry& e)
    : kind(e.state.kind),
      total(e.state.total),
      last(e.state.last),
      sum(e.state.sum),
      count(e.state.count) {
  }

  bool operator==(const snapshot& o) const {
    return kind == o.kind && total == o.total && last == o.last && sum == o.sum
           && count == o.count;
  }
};

} // namespace

TEST_CASE("slice_state applies a range and creates its series", "[slice_state]") {
  slice_state st{slice_id};
  CHECK(st.id() == slice_id);
  write_builder b{"p", 1};
  b.add("requests_total", kind::counter, 2)
    .add(R"(temp{room="lab"})", kind::gauge, 21.5, counter_mode::delta, 100)
    .add("requests_total", kind::counter, 3);
  auto res = apply(st, b);
  CHECK(res.code == errc::none);
  CHECK_FALSE(res.duplicate);
  CHECK(res.applied == 3);
  CHECK(st.series_count() == 2);

  auto* c = st.find("requests_total");
  REQUIRE(c != nullptr);
  CHECK(c->key == "requests_total");
  CHECK(c->slice == slice_id);
  CHECK(c->state.kind == kind::counter);
  CHECK(c->state.total == 5);
  CHECK(c->state.count == 2);

  auto* g = st.find(R"(temp{room="lab"})");
  REQUIRE(g != nullptr);
  CHECK(g->state.kind == kind::gauge);
  CHECK(g->state.last == 21.5);
  CHECK(g->state.updated_ms == 100);

  CHECK(st.find("absent") == nullptr);
  CHECK(st.find("requests_total{}") == nullptr); // keys are exact text
}

TEST_CASE("slice_state applies only the samples of the given range",
          "[slice_state]") {
  slice_state st{slice_id};
  write_builder b{"p", 1};
  b.add("a", kind::gauge, 1).add("b", kind::gauge, 2).add("c", kind::gauge, 3).add(
    "d", kind::gauge, 4);
  slice_range r = b.all();
  r.begin = 1;
  r.end = 3;
  std::vector<series_entry*> touched;
  auto res = st.apply(b.w, r, 0, touched);
  CHECK(res.code == errc::none);
  CHECK(res.applied == 2);
  CHECK(st.find("a") == nullptr);
  REQUIRE(st.find("b") != nullptr);
  REQUIRE(st.find("c") != nullptr);
  CHECK(st.find("d") == nullptr);
  CHECK(st.find("b")->state.last == 2);
  CHECK(st.find("c")->state.last == 3);
}

TEST_CASE("slice_state: a duplicate delivery changes nothing", "[slice_state]") {
  slice_state st{slice_id};
  write_builder b{"p", 5};
  b.add("c", kind::counter, 10).add("g", kind::gauge, 1);
  REQUIRE(apply(st, b).applied == 2);
  snapshot c_before{*st.find("c")};
  snapshot g_before{*st.find("g")};

  auto again = apply(st, b);
  CHECK(again.duplicate);
  CHECK(again.code == errc::none);
  CHECK(again.applied == 0);
  CHECK(snapshot{*st.find("c")} == c_before);
  CHECK(snapshot{*st.find("g")} == g_before);
  CHECK(st.find("c")->state.total == 10);

  // A delivery with a different sequence still applies.
  write_builder next{"p", 6};
  next.add("c", kind::counter, 1);
  CHECK(apply(st, next).applied == 1);
  CHECK(st.find("c")->state.total == 11);
  // And an older, never-seen sequence inside the window too.
  write_builder late{"p", 4};
  late.add("c", kind::counter, 100);
  CHECK(apply(st, late).applied == 1);
  CHECK(st.find("c")->state.total == 111);
  CHECK(apply(st, late).duplicate);
}

TEST_CASE("slice_state: producers have independent sequences", "[slice_state]") {
  slice_state st{slice_id};
  write_builder a{"producer-a", 1};
  a.add("c", kind::counter, 1);
  write_builder b{"producer-b", 1};
  b.add("c", kind::counter, 2);
  auto ra = apply(st, a);
  auto rb = apply(st, b);
  CHECK_FALSE(ra.duplicate);
  CHECK_FALSE(rb.duplicate);
  CHECK(rb.applied == 1);
  CHECK(st.find("c")->state.total == 3);
  CHECK(apply(st, a).duplicate);
  CHECK(apply(st, b).duplicate);
}

TEST_CASE("slice_state: a kind conflict leaves every series of the range unchanged",
          "[slice_state]") {
  slice_state st{slice_id};
  write_builder setup{"p", 1};
  setup.add("a", kind::counter, 1).add("c", kind::gauge, 5);
  REQUIRE(apply(st, setup).applied == 2);
  snapshot a_before{*st.find("a")};
  snapshot c_before{*st.find("c")};

  write_builder b{"p", 2};
  b.add("b", kind::gauge, 1)  // new series
    .add("c", kind::gauge, 9) // existing series, same kind
    .add("a", kind::gauge, 3) // existing counter sent as a gauge
    .add("d", kind::gauge, 4);
  std::vector<series_entry*> touched;
  auto res = st.apply(b.w, b.all(), 0, touched);
  CHECK(res.code == errc::kind_conflict);
  CHECK(res.applied == 0);
  CHECK_FALSE(res.duplicate);
  CHECK_THAT(res.message, Catch::Contains("series a "));
  CHECK_THAT(res.message, Catch::Contains("counter"));
  CHECK_THAT(res.message, Catch::Contains("gauge"));

  CHECK(st.series_count() == 2);
  CHECK(st.find("b") == nullptr);
  CHECK(st.find("d") == nullptr);
  CHECK(snapshot{*st.find("a")} == a_before);
  CHECK(snapshot{*st.find("c")} == c_before);
  CHECK(touched.empty());

  // The failed sequence was not recorded: a corrected retry applies.
  write_builder fixed{"p", 2};
  fixed.add("b", kind::gauge, 1).add("a", kind::counter, 3);
  auto retry = apply(st, fixed);
  CHECK(retry.code == errc::none);
  CHECK_FALSE(retry.duplicate);
  CHECK(retry.applied == 2);
  CHECK(st.find("a")->state.total == 4);
}

TEST_CASE("slice_state: one key with two kinds in one batch is a conflict",
          "[slice_state]") {
  slice_state st{slice_id};
  write_builder b{"p", 1};
  b.add("x", kind::counter, 1).add("y", kind::gauge, 2).add("x", kind::gauge, 3);
  auto res = apply(st, b);
  CHECK(res.code == errc::kind_conflict);
  CHECK(res.applied == 0);
  CHECK(st.series_count() == 0);
  CHECK(st.find("x") == nullptr);
  CHECK(st.find("y") == nullptr);
}

TEST_CASE("slice_state: one new key twice with the same kind applies both",
          "[slice_state]") {
  slice_state st{slice_id};
  write_builder b{"p", 1};
  b.add("x", kind::counter, 1)
    .add("y", kind::gauge, 2)
    .add("x", kind::counter, 3)
    .add("x", kind::counter, 5);
  auto res = apply(st, b);
  CHECK(res.code == errc::none);
  CHECK(res.applied == 4);
  CHECK(st.series_count() == 2);
  REQUIRE(st.find("x") != nullptr);
  CHECK(st.find("x")->state.total == 9);
  CHECK(st.find("x")->state.count == 3);
  CHECK(st.find("x")->state.last == 5);
}

TEST_CASE("slice_state: a sequence below the dedup window is refused",
          "[slice_state]") {
  slice_state st{slice_id};
  write_builder top{"p", 200};
  top.add("c", kind::counter, 1);
  REQUIRE(apply(st, top).applied == 1);

  write_builder old{"p", 200 - 129};
  old.add("c", kind::counter, 50).add("new_series", kind::gauge, 1);
  auto res = apply(st, old);
  CHECK(res.code == errc::sequence_too_old);
  CHECK(res.applied == 0);
  CHECK_FALSE(res.duplicate);
  CHECK_THAT(res.message, Catch::Contains("71"));
  CHECK_THAT(res.message, Catch::Contains("'p'"));
  CHECK(st.find("c")->state.total == 1);
  CHECK(st.find("new_series") == nullptr);

  // Inside the window: still checkable.
  write_builder edge{"p", 200 - 127};
  edge.add("c", kind::counter, 50);
  CHECK(apply(st, edge).applied == 1);
  CHECK(st.find("c")->state.total == 51);

  // Another producer is unaffected by p's window.
  write_builder other{"q", 1};
  other.add("c", kind::counter, 1);
  CHECK(apply(st, other).code == errc::none);
}

TEST_CASE("slice_state pushes subscribed series to touched once per window",
          "[slice_state]") {
  std::unordered_set<std::string> watched{"w1", "w2"};
  slice_state st{slice_id};
  st.watched = &watched;

  write_builder b1{"p", 1};
  b1.add("w1", kind::gauge, 1).add("plain", kind::gauge, 2).add("w1", kind::gauge, 3);
  std::vector<series_entry*> touched;
  REQUIRE(st.apply(b1.w, b1.all(), 10, touched).code == errc::none);
  REQUIRE(touched.size() == 1);
  CHECK(touched[0] == st.find("w1"));
  CHECK(st.find("w1")->subscribed);
  CHECK_FALSE(st.find("plain")->subscribed);
  CHECK(st.find("w1")->touched_window == 10);

  // Same window: w1 is not pushed again; w2 is new to it.
  write_builder b2{"p", 2};
  b2.add("w1", kind::gauge, 4).add("w2", kind::gauge, 5);
  REQUIRE(st.apply(b2.w, b2.all(), 10, touched).code == errc::none);
  REQUIRE(touched.size() == 2);
  CHECK(touched[1] == st.find("w2"));

  // A duplicate delivery touches nothing.
  REQUIRE(st.apply(b2.w, b2.all(), 11, touched).duplicate);
  CHECK(touched.size() == 2);

  // Next window: pushed again.
  std::vector<series_entry*> next;
  write_builder b3{"p", 3};
  b3.add("w1", kind::gauge, 6).add("w1", kind::gauge, 7).add("plain", kind::gauge, 8);
  REQUIRE(st.apply(b3.w, b3.all(), 11, next).code == errc::none);
  REQUIRE(next.size() == 1);
  CHECK(next[0] == st.find("w1"));
  CHECK(st.find("w1")->state.last == 7);
}

TEST_CASE("slice_state without a watched set touches nothing", "[slice_state]") {
  slice_state st{slice_id};
  write_builder b{"p", 1};
  b.add("w1", kind::gauge, 1);
  std::vector<series_entry*> touched;
  REQUIRE(st.apply(b.w, b.all(), 0, touched).code == errc::none);
  CHECK(touched.empty());
  CHECK_FALSE(st.find("w1")->subscribed);
}

TEST_CASE("slice_state keeps entries stable as series are added", "[slice_state]") {
  slice_state st{slice_id};
  write_builder first{"p", 1};
  first.add("first", kind::gauge, 1);
  REQUIRE(apply(st, first).applied == 1);
  auto* e = st.find("first");
  for (uint64_t seq = 2; seq < 50; ++seq) {
    write_builder b{"p", seq};
    for (int i = 0; i < 20; ++i)
      b.add("s" + std::to_string(seq) + "_" + std::to_string(i), kind::gauge, 1);
    REQUIRE(apply(st, b).applied == 20);
  }
  CHECK(st.series_count() == 1 + 48 * 20);
  CHECK(st.find("first") == e);
  CHECK(e->key == "first");
  CHECK(st.find("s49_19") != nullptr);
}
