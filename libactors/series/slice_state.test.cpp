#include "series/slice_state.hpp"

#include <string>
#include <utility>
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
using tether::series::apply_context;
using tether::series::opened_window;
using tether::series::series_entry;
using tether::series::shard_write;
using tether::series::slice_range;
using tether::series::slice_state;

namespace {

constexpr uint32_t slice_id = 7;

/// Builds a shard write by hand, all samples in one slice.
struct write_builder {
  shard_write w;
  uint32_t window_ms = 0; ///< of the samples added next (0: the series default)
  uint32_t rule = 0;      ///< of the samples added next

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
    s.input_hash = s.hash;
    s.window_ms = window_ms;
    s.rule = rule;
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

/// A clock at which the default windows of the samples' timestamps are open.
apply_context open_context() {
  apply_context ctx;
  ctx.now_ms = 1000;
  ctx.lateness_ms = 5000;
  ctx.accuracy = 0.01;
  return ctx;
}

slice_state::apply_result apply(slice_state& st, const write_builder& b,
                                const apply_context& ctx = open_context()) {
  std::vector<opened_window> opened;
  return st.apply(b.w, b.all(), ctx, opened);
}

/// The opened windows as (window length, start) pairs, all of the test's slice.
std::vector<std::pair<uint32_t, int64_t>>
windows_of(const std::vector<opened_window>& opened) {
  std::vector<std::pair<uint32_t, int64_t>> out;
  for (auto& o : opened) {
    CHECK(o.slice == slice_id);
    out.emplace_back(o.window_ms, o.start);
  }
  return out;
}

using window_list = std::vector<std::pair<uint32_t, int64_t>>;

/// Closes the window at `start` of every series of `window_ms` as the shard does;
/// returns the keys closed.
std::vector<std::string> close_windows(slice_state& st, uint32_t window_ms,
                                       int64_t start) {
  std::vector<std::string> keys;
  st.close_windows(window_ms, start, [&](series_entry& e) {
    e.state.close(start, {});
    keys.emplace_back(e.key());
  });
  return keys;
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
  CHECK(c->key() == "requests_total");
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
  std::vector<opened_window> opened;
  auto res = st.apply(b.w, r, open_context(), opened);
  CHECK(res.code == errc::none);
  CHECK(res.applied == 2);
  CHECK(res.late == 0);
  CHECK(windows_of(opened) == window_list{{10000, 0}});
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
  std::vector<opened_window> opened;
  auto res = st.apply(b.w, b.all(), open_context(), opened);
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
  CHECK(opened.empty());

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
  CHECK(e->key() == "first");
  CHECK(st.find("s49_19") != nullptr);
}

TEST_CASE("slice_state reports each window that samples open once, per window length",
          "[slice_state]") {
  slice_state st{slice_id};
  write_builder b1{"p", 1};
  b1.add("a", kind::gauge, 1, counter_mode::delta, 100)
    .add("a", kind::gauge, 2, counter_mode::delta, 200)
    .add("b", kind::gauge, 3, counter_mode::delta, 100)
    .add("a", kind::gauge, 4, counter_mode::delta, 15000)
    .add("b", kind::gauge, 5, counter_mode::delta, 150);
  std::vector<opened_window> opened;
  auto res = st.apply(b1.w, b1.all(), open_context(), opened);
  REQUIRE(res.code == errc::none);
  CHECK(res.applied == 5);
  CHECK(res.late == 0);
  // One close per window of the slice, whatever the number of series in it.
  CHECK(windows_of(opened) == window_list{{10000, 0}, {10000, 10000}});

  // Windows already open are not reported again; `opened` is appended to. A rule
  // with another window length gets its own.
  write_builder b2{"p", 2};
  b2.add("a", kind::gauge, 6, counter_mode::delta, 300)
    .add("b", kind::gauge, 7, counter_mode::delta, 12000)
    .add("a", kind::gauge, 8, counter_mode::delta, 19999);
  b2.window_ms = 1000;
  b2.add("fast", kind::gauge, 9, counter_mode::delta, 300);
  REQUIRE(st.apply(b2.w, b2.all(), open_context(), opened).code == errc::none);
  CHECK(windows_of(opened) == window_list{{10000, 0}, {10000, 10000}, {1000, 0}});

  // A duplicate delivery opens nothing.
  std::vector<opened_window> again;
  REQUIRE(st.apply(b2.w, b2.all(), open_context(), again).duplicate);
  CHECK(again.empty());
  std::vector<opened_window> all;
  st.open_windows(all);
  CHECK(windows_of(all) == window_list{{10000, 0}, {10000, 10000}, {1000, 0}});

  // Closing a window visits the series of its length that have it open.
  CHECK(close_windows(st, 10000, 0) == std::vector<std::string>{"a", "b"});
  CHECK(st.find("a")->state.closed_until == 10000);
  CHECK(st.find("fast")->state.closed_until == 0);
  CHECK(close_windows(st, 1000, 0) == std::vector<std::string>{"fast"});
  all.clear();
  st.open_windows(all);
  CHECK(windows_of(all) == window_list{{10000, 10000}});

  // Once the shard has closed a window, a sample of the next one opens it afresh.
  write_builder b3{"p", 3};
  b3.add("a", kind::gauge, 9, counter_mode::delta, 25000);
  std::vector<opened_window> next;
  REQUIRE(st.apply(b3.w, b3.all(), open_context(), next).code == errc::none);
  CHECK(windows_of(next) == window_list{{10000, 20000}});
}

TEST_CASE("slice_state finds every series among many, of several window lengths",
          "[slice_state]") {
  slice_state st{slice_id};
  uint64_t seq = 0;
  for (int round = 0; round < 3; ++round) {
    write_builder b{"p", ++seq};
    for (int i = 0; i < 500; ++i) {
      b.window_ms = i % 3 == 0 ? 1000 : 0;
      b.add("s" + std::to_string(i), kind::counter, 1, counter_mode::delta, 100);
    }
    REQUIRE(apply(st, b).applied == 500);
  }
  CHECK(st.series_count() == 500);
  for (int i = 0; i < 500; ++i) {
    auto key = "s" + std::to_string(i);
    auto* e = st.find(key);
    REQUIRE(e != nullptr);
    CHECK(e->key() == key);
    CHECK(e->state.total == 3);
  }
  CHECK(st.find("s500") == nullptr);
  CHECK(close_windows(st, 1000, 0).size() == 167);
  CHECK(close_windows(st, 10000, 0).size() == 333);
}

TEST_CASE("slice_state: a series takes its window and rule from its first sample",
          "[slice_state]") {
  slice_state st{slice_id};
  write_builder b{"p", 1};
  b.window_ms = 1000;
  b.rule = 3;
  b.add("ruled", kind::counter, 1, counter_mode::delta, 1500);
  b.window_ms = 0;
  b.rule = 0;
  b.add("plain", kind::counter, 1, counter_mode::delta, 1500);
  std::vector<opened_window> opened;
  REQUIRE(st.apply(b.w, b.all(), open_context(), opened).code == errc::none);
  CHECK(windows_of(opened) == window_list{{1000, 1000}, {10000, 0}});
  auto* ruled = st.find("ruled");
  auto* plain = st.find("plain");
  REQUIRE(ruled != nullptr);
  REQUIRE(plain != nullptr);
  CHECK(ruled->state.window_ms == 1000);
  CHECK(ruled->state.rule == 3);
  CHECK(plain->state.window_ms == series::series_state{}.window_ms);
  CHECK(plain->state.rule == 0);
}

TEST_CASE("slice_state counts late samples and creates no series for them",
          "[slice_state]") {
  apply_context ctx;
  ctx.now_ms = 20000;
  ctx.lateness_ms = 5000;
  // With 10 s windows, [0, 10000) stopped taking samples at 15000; [10000, 20000)
  // takes them until 25000.
  slice_state st{slice_id};
  write_builder setup{"p", 1};
  setup.add("a", kind::counter, 1, counter_mode::delta, 16000);
  REQUIRE(apply(st, setup, ctx).applied == 1);
  snapshot a_before{*st.find("a")};

  write_builder b{"p", 2};
  b.add("a", kind::counter, 10, counter_mode::delta, 1) // late, existing series
    .add("n", kind::gauge, 2, counter_mode::delta, 9999) // late, new key
    .add("m", kind::gauge, 3, counter_mode::delta, 1)    // late, new key
    .add("m", kind::gauge, 4, counter_mode::delta, 19000); // fresh: creates m
  std::vector<opened_window> opened;
  auto res = st.apply(b.w, b.all(), ctx, opened);
  CHECK(res.code == errc::none);
  CHECK_FALSE(res.duplicate);
  CHECK(res.applied == 1);
  CHECK(res.late == 3);
  CHECK(st.series_count() == 2);
  CHECK(st.find("n") == nullptr);
  REQUIRE(st.find("m") != nullptr);
  CHECK(st.find("m")->state.count == 1);
  CHECK(st.find("m")->state.last == 4);
  CHECK(snapshot{*st.find("a")} == a_before);
  CHECK(opened.empty()); // a's window [10000, 20000) has it scheduled already

  // The sequence was recorded: a redelivery is a duplicate, not late again.
  auto again = apply(st, b, ctx);
  CHECK(again.duplicate);
  CHECK(again.late == 0);
  CHECK(again.applied == 0);

  // A batch of late samples only still completes.
  write_builder only_late{"p", 3};
  only_late.add("x", kind::gauge, 1, counter_mode::delta, 5);
  auto r3 = apply(st, only_late, ctx);
  CHECK(r3.code == errc::none);
  CHECK(r3.applied == 0);
  CHECK(r3.late == 1);
  CHECK(st.series_count() == 2);
  CHECK(apply(st, only_late, ctx).duplicate);
}

TEST_CASE("slice_state: lateness of a new key follows its rule's window",
          "[slice_state]") {
  apply_context ctx;
  ctx.now_ms = 20000;
  ctx.lateness_ms = 5000;
  slice_state st{slice_id};
  write_builder b{"p", 1};
  b.window_ms = 60000; // [0, 60000) is open at 20000
  b.add("long", kind::gauge, 1, counter_mode::delta, 1);
  b.window_ms = 1000; // [0, 1000) is not
  b.add("short", kind::gauge, 1, counter_mode::delta, 1);
  auto res = apply(st, b, ctx);
  CHECK(res.applied == 1);
  CHECK(res.late == 1);
  CHECK(st.find("long") != nullptr);
  CHECK(st.find("short") == nullptr);
}

TEST_CASE("slice_state: a sample for a window the series closed is late",
          "[slice_state]") {
  slice_state st{slice_id};
  write_builder b1{"p", 1};
  b1.add("c", kind::counter, 5, counter_mode::delta, 100);
  REQUIRE(apply(st, b1).applied == 1);
  auto* c = st.find("c");
  auto w = c->state.close(0, {});
  CHECK(w.increase == 5);
  snapshot before{*c};

  // Within the lateness, but the window has been emitted.
  write_builder b2{"p", 2};
  b2.add("c", kind::counter, 7, counter_mode::delta, 200)
    .add("c", kind::counter, 1, counter_mode::delta, 10001);
  auto res = apply(st, b2);
  CHECK(res.code == errc::none);
  CHECK(res.late == 1);
  CHECK(res.applied == 1);
  CHECK(c->state.total == 6);
  CHECK(c->state.count == before.count + 1);
}

TEST_CASE("slice_state: a sequence jump beyond the bound is refused and changes nothing",
          "[slice_state]") {
  slice_state st{slice_id};
  auto ctx = open_context();
  ctx.max_sequence_jump = 1000;
  std::vector<opened_window> opened;
  // A first write may start anywhere up to the bound.
  write_builder first{"p", 1000};
  first.add("c", kind::counter, 1);
  REQUIRE(st.apply(first.w, first.all(), ctx, opened).applied == 1);
  // A jump of more than the bound above the highest applied is refused.
  write_builder huge{"p", std::numeric_limits<uint64_t>::max()};
  huge.add("c", kind::counter, 100);
  auto res = st.apply(huge.w, huge.all(), ctx, opened);
  CHECK(res.code == errc::sequence_jump);
  CHECK(res.applied == 0);
  CHECK(st.find("c")->state.total == 1);
  write_builder over{"p", 2001};
  over.add("c", kind::counter, 100);
  CHECK(st.apply(over.w, over.all(), ctx, opened).code == errc::sequence_jump);
  // The producer is not poisoned: its next sequence still applies.
  write_builder next{"p", 1001};
  next.add("c", kind::counter, 1);
  CHECK(st.apply(next.w, next.all(), ctx, opened).applied == 1);
  write_builder edge{"p", 2001};
  edge.add("c", kind::counter, 1);
  CHECK(st.apply(edge.w, edge.all(), ctx, opened).applied == 1);
  CHECK(st.find("c")->state.total == 3);
  // A fresh producer is measured from 0 and gets no dedup entry when refused.
  write_builder fresh{"q", 1001};
  fresh.add("c", kind::counter, 1);
  CHECK(st.apply(fresh.w, fresh.all(), ctx, opened).code == errc::sequence_jump);
  CHECK(st.find_dedup("q") == nullptr);
  // The node's own remote-write producer uses clock sequences and is exempt.
  write_builder node_owned{"remote-write@tether-1", uint64_t{1} << 60};
  node_owned.add("c", kind::counter, 1);
  CHECK(st.apply(node_owned.w, node_owned.all(), ctx, opened).applied == 1);
}

TEST_CASE("slice_state forgets producers idle longer than producer_idle_ms",
          "[slice_state]") {
  slice_state st{slice_id};
  auto at = [](int64_t now) {
    auto ctx = open_context();
    ctx.now_ms = now;
    ctx.producer_idle_ms = 10000;
    return ctx;
  };
  write_builder old_one{"old", 5};
  old_one.add("c", kind::counter, 1, counter_mode::delta, 1000);
  REQUIRE(apply(st, old_one, at(1000)).applied == 1);
  write_builder busy{"busy", 1};
  busy.add("c", kind::counter, 1, counter_mode::delta, 5000);
  REQUIRE(apply(st, busy, at(5000)).applied == 1);
  CHECK(st.producer_count() == 2);
  // 11 s after its last write "old" goes with the next write; "busy" (7 s) stays.
  write_builder later{"busy", 2};
  later.add("c", kind::counter, 1, counter_mode::delta, 12000);
  REQUIRE(apply(st, later, at(12000)).applied == 1);
  CHECK(st.find_dedup("old") == nullptr);
  REQUIRE(st.find_dedup("busy") != nullptr);
  CHECK(st.find_dedup("busy")->highest() == 2);
  CHECK(st.producer_count() == 1);
  // What the documentation says: a write retried after that is new again.
  write_builder retried{"old", 5};
  retried.add("c", kind::counter, 1, counter_mode::delta, 12000);
  CHECK(apply(st, retried, at(12000)).applied == 1);
  CHECK(st.find("c")->state.total == 4);
  // Never evicted while it writes: busy wrote at 12 s.
  write_builder again{"busy", 3};
  again.add("c", kind::counter, 1, counter_mode::delta, 21000);
  REQUIRE(apply(st, again, at(21000)).applied == 1);
  CHECK(st.find_dedup("busy") != nullptr);
}

TEST_CASE("slice_state keeps at most max_producers, dropping the one idle longest",
          "[slice_state]") {
  auto run = [](slice_state& st) {
    for (int i = 0; i < 5; ++i) {
      auto ctx = open_context();
      ctx.now_ms = 1000 + 100 * i;
      ctx.max_producers = 3;
      write_builder b{"p" + std::to_string(i), 1};
      b.add("c", kind::counter, 1, counter_mode::delta, ctx.now_ms);
      REQUIRE(apply(st, b, ctx).applied == 1);
    }
  };
  slice_state st{slice_id};
  run(st);
  CHECK(st.producer_count() == 3);
  CHECK(st.find_dedup("p0") == nullptr);
  CHECK(st.find_dedup("p1") == nullptr);
  for (auto p : {"p2", "p3", "p4"})
    CHECK(st.find_dedup(p) != nullptr);
  // A replica restored from a snapshot keeps the producers' times: it makes the same
  // decision for the next producer as the original.
  std::string error;
  auto snap = st.snapshot(1);
  auto copy = slice_state::restore(snap, error);
  REQUIRE(copy != nullptr);
  for (auto* s : {&st, copy.get()}) {
    auto ctx = open_context();
    ctx.now_ms = 2000;
    ctx.max_producers = 3;
    write_builder b{"p9", 1};
    b.add("c", kind::counter, 1, counter_mode::delta, 2000);
    REQUIRE(apply(*s, b, ctx).applied == 1);
    CHECK(s->find_dedup("p2") == nullptr);
    CHECK(s->find_dedup("p3") != nullptr);
    CHECK(s->producer_count() == 3);
  }
}

TEST_CASE("slice_state refuses counter samples that would overflow a running total",
          "[slice_state]") {
  slice_state st{slice_id};
  write_builder first{"p", 1};
  first.add("c", kind::counter, 1e308);
  REQUIRE(apply(st, first).applied == 1);
  write_builder over{"p", 2};
  over.add("g", kind::gauge, 1).add("c", kind::counter, 1e308);
  auto r = apply(st, over);
  CHECK(r.code == errc::non_finite_value);
  CHECK(r.message.find("running total of c") != std::string::npos);
  CHECK(st.find("c")->state.total == 1e308);
  CHECK(st.find("g") == nullptr); // nothing of the range applied
  // The sequence stays free: a corrected write with it applies.
  write_builder fixed{"p", 2};
  fixed.add("c", kind::counter, 1);
  CHECK(apply(st, fixed).applied == 1);
  // Two samples of a new key that only overflow together.
  write_builder pair{"p", 3};
  pair.add("d", kind::counter, 1e308).add("d", kind::counter, 1e308);
  CHECK(apply(st, pair).code == errc::non_finite_value);
  CHECK(st.find("d") == nullptr);
}

TEST_CASE("slice_state refuses a range that would create more series than series_room",
          "[slice_state]") {
  slice_state st{slice_id};
  write_builder first{"p", 1};
  first.add("a", kind::counter, 1);
  REQUIRE(apply(st, first).code == errc::none);

  auto ctx = open_context();
  ctx.series_room = 1;
  write_builder b{"p", 2};
  b.add("a", kind::counter, 1).add("b", kind::counter, 1).add("c", kind::gauge, 2)
    .add("b", kind::counter, 1);
  std::vector<opened_window> opened;
  auto res = st.apply(b.w, b.all(), ctx, opened);
  CHECK(res.code == errc::input_limit);
  CHECK_THAT(res.message, Catch::Contains("max-series"));
  CHECK(res.applied == 0);
  CHECK(st.series_count() == 1); // nothing of the range applied, not even to "a"
  CHECK(st.find("a")->state.total == 1);

  // Room for the two new series (b twice is one series): all of it applies.
  ctx.series_room = 2;
  res = st.apply(b.w, b.all(), ctx, opened);
  CHECK(res.code == errc::none);
  CHECK(res.applied == 4);
  CHECK(st.series_count() == 3);
  // Existing series take samples with no room left.
  ctx.series_room = 0;
  write_builder more{"p", 3};
  more.add("a", kind::counter, 1);
  CHECK(st.apply(more.w, more.all(), ctx, opened).code == errc::none);
  CHECK(st.find("a")->state.total == 3);
}
