#include "series/dedup_window.hpp"

#include <cstdint>
#include <random>
#include <set>
#include <string>

#include <catch2/catch.hpp>

using tether::series::dedup_window;
using verdict = dedup_window::verdict;

namespace Catch {
template <>
struct StringMaker<verdict> {
  static std::string convert(verdict v) {
    switch (v) {
      case verdict::fresh:
        return "fresh";
      case verdict::duplicate:
        return "duplicate";
      default:
        return "too_old";
    }
  }
};
} // namespace Catch

namespace {

/// docs/protocol.md section 6: a sequence more than 128 below the highest is too old.
constexpr uint64_t window = 128;

/// Whether `seq` is exactly `window` below `max`: the edge case the protocol and the
/// window's size must agree on, checked on its own below and skipped elsewhere.
bool at_edge(uint64_t max, uint64_t seq) {
  return seq <= max && max - seq == window;
}

/// The obvious model: every sequence ever recorded, and the highest of them.
struct model {
  std::set<uint64_t> seen;

  uint64_t max() const {
    return seen.empty() ? 0 : *seen.rbegin();
  }

  verdict check(uint64_t seq) const {
    if (seq > max())
      return verdict::fresh;
    if (max() - seq > window)
      return verdict::too_old;
    return seen.count(seq) ? verdict::duplicate : verdict::fresh;
  }
};

void record(dedup_window& w, uint64_t seq) {
  REQUIRE(w.check(seq) == verdict::fresh);
  w.record(seq);
  REQUIRE(w.check(seq) == verdict::duplicate);
}

} // namespace

TEST_CASE("a new window finds every positive sequence fresh", "[dedup]") {
  dedup_window w;
  CHECK(w.highest() == 0);
  CHECK(w.check(1) == verdict::fresh);
  CHECK(w.check(1000) == verdict::fresh);
  CHECK(w.check(UINT64_MAX) == verdict::fresh);
}

TEST_CASE("recorded sequences are duplicates, others stay fresh", "[dedup]") {
  dedup_window w;
  record(w, 1);
  CHECK(w.highest() == 1);
  CHECK(w.check(2) == verdict::fresh);
  record(w, 2);
  record(w, 3);
  CHECK(w.check(1) == verdict::duplicate);
  CHECK(w.check(2) == verdict::duplicate);
  CHECK(w.check(3) == verdict::duplicate);
  CHECK(w.check(4) == verdict::fresh);
  CHECK(w.highest() == 3);
}

TEST_CASE("out-of-order arrivals inside the window", "[dedup]") {
  dedup_window w;
  record(w, 10);
  // 5..9 arrive late: fresh until recorded, and do not move the highest.
  CHECK(w.check(7) == verdict::fresh);
  record(w, 7);
  CHECK(w.highest() == 10);
  CHECK(w.check(5) == verdict::fresh);
  CHECK(w.check(6) == verdict::fresh);
  CHECK(w.check(8) == verdict::fresh);
  CHECK(w.check(9) == verdict::fresh);
  record(w, 9);
  record(w, 5);
  CHECK(w.check(6) == verdict::fresh);
  CHECK(w.check(8) == verdict::fresh);
  CHECK(w.check(5) == verdict::duplicate);
  CHECK(w.check(7) == verdict::duplicate);
  CHECK(w.check(9) == verdict::duplicate);
  CHECK(w.check(10) == verdict::duplicate);

  // Late arrivals far back in the window, on both halves of its bitmap.
  record(w, 200);
  record(w, 200 - 63);
  record(w, 200 - 64);
  record(w, 200 - 127);
  CHECK(w.check(200 - 62) == verdict::fresh);
  CHECK(w.check(200 - 65) == verdict::fresh);
  CHECK(w.check(200 - 126) == verdict::fresh);
  CHECK(w.highest() == 200);
}

TEST_CASE("the window covers the sequences just below the highest", "[dedup]") {
  dedup_window w;
  record(w, 1000);
  CHECK(w.check(1000 - 127) == verdict::fresh);
  CHECK(w.check(1000 - 129) == verdict::too_old);
  CHECK(w.check(1) == verdict::too_old);
  record(w, 1000 - 127);
  CHECK(w.check(1000 - 127) == verdict::duplicate);
}

TEST_CASE("a small first sequence leaves nothing too old", "[dedup]") {
  dedup_window w;
  record(w, 5);
  for (uint64_t s = 1; s < 5; ++s)
    CHECK(w.check(s) == verdict::fresh);
}

TEST_CASE("shifting the window keeps what is still inside it", "[dedup]") {
  auto shift = GENERATE(as<uint64_t>{}, 1, 2, 63, 64, 65, 127, 128, 129, 1000);
  INFO("shift " << shift);
  // Start with every sequence from 1000-127 to 1000 applied.
  dedup_window w;
  constexpr uint64_t top = 1000;
  for (uint64_t s = top - 127; s <= top; ++s)
    record(w, s);
  // Move the highest up by `shift`.
  record(w, top + shift);
  CHECK(w.highest() == top + shift);
  for (uint64_t s = top - 127; s <= top; ++s) {
    if (at_edge(top + shift, s))
      continue;
    INFO("seq " << s);
    if (top + shift - s > window)
      CHECK(w.check(s) == verdict::too_old);
    else
      CHECK(w.check(s) == verdict::duplicate);
  }
  // The gap between the old and the new highest was never applied.
  for (uint64_t s = top + 1; s < top + shift; ++s) {
    if (at_edge(top + shift, s))
      continue;
    INFO("gap seq " << s);
    if (top + shift - s > window)
      CHECK(w.check(s) == verdict::too_old);
    else
      CHECK(w.check(s) == verdict::fresh);
  }
}

TEST_CASE("shifting a sparse window moves single bits to the right place",
          "[dedup]") {
  auto shift = GENERATE(as<uint64_t>{}, 1, 63, 64, 65, 127, 128, 1000);
  auto back = GENERATE(as<uint64_t>{}, 0, 1, 62, 63, 64, 65, 126, 127);
  INFO("shift " << shift << ", bit " << back << " below the highest");
  dedup_window w;
  constexpr uint64_t top = 500;
  record(w, top);
  if (back > 0)
    record(w, top - back);
  record(w, top + shift);
  model m;
  m.seen = {top, top - back, top + shift};
  for (uint64_t s = top - 130; s <= top + shift + 1; ++s) {
    if (at_edge(m.max(), s))
      continue;
    INFO("seq " << s);
    CHECK(w.check(s) == m.check(s));
  }
}

TEST_CASE("a sequence 127 below the highest is checkable", "[dedup]") {
  dedup_window w;
  record(w, 129);
  CHECK(w.check(129 - 127) == verdict::fresh);
  record(w, 2);
  CHECK(w.check(2) == verdict::duplicate);
  CHECK(w.check(129 - 129) == verdict::too_old);
}

TEST_CASE("only sequences more than 128 below the highest are too old",
          "[dedup]") {
  // docs/protocol.md section 6: with highest H, a sequence s >= H - 128 not applied
  // before is applied, one applied before is a duplicate, and only s < H - 128 is
  // SEQUENCE_TOO_OLD. The class comment says the same: "the highest one and the 128
  // below it".
  dedup_window w;
  record(w, 200);
  CHECK(w.check(200 - 129) == verdict::too_old);
  CHECK(w.check(200 - 128) == verdict::fresh);

  dedup_window applied;
  record(applied, 72);
  record(applied, 200);
  CHECK(applied.check(72) == verdict::duplicate);
}

TEST_CASE("dedup_window agrees with a model over random arrivals", "[dedup]") {
  std::mt19937_64 rng{20240611};
  dedup_window w;
  model m;
  uint64_t next = 1;
  for (int step = 0; step < 20000; ++step) {
    uint64_t seq;
    switch (rng() % 4) {
      case 0: // the next sequence
        seq = next;
        break;
      case 1: // a jump ahead, across the bitmap's halves
        seq = next + rng() % 200;
        break;
      case 2: // a retry or late arrival near the top
        seq = next > 140 ? next - 1 - rng() % 140 : 1 + rng() % next;
        break;
      default: // a retry inside the window
        seq = next > 64 ? next - 1 - rng() % 64 : 1 + rng() % next;
        break;
    }
    if (at_edge(m.max(), seq))
      continue;
    auto expected = m.check(seq);
    INFO("step " << step << " seq " << seq);
    REQUIRE(w.check(seq) == expected);
    if (expected == verdict::fresh) {
      w.record(seq);
      m.seen.insert(seq);
      if (seq >= next)
        next = seq + 1;
    }
    REQUIRE(w.highest() == *m.seen.rbegin());
  }
}
