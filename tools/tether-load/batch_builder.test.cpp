#include "tether-load/batch_builder.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <new>
#include <set>

using namespace tether::tools::load;

// -- allocation counting ----------------------------------------------------------------
// The test binary replaces the global allocation functions so that a test can assert
// that a code path does not allocate. Counting is off unless a test turns it on.

namespace {

thread_local bool counting_allocations = false;
thread_local std::size_t allocations = 0;

/// Counts the heap allocations made by the current thread during its lifetime.
class allocation_counter {
public:
  allocation_counter() {
    allocations = 0;
    counting_allocations = true;
  }
  ~allocation_counter() {
    counting_allocations = false;
  }
  std::size_t count() const {
    return allocations;
  }
};

} // namespace

namespace {

void* counted_allocate(std::size_t size) noexcept {
  if (counting_allocations)
    ++allocations;
  return std::malloc(size == 0 ? 1 : size);
}

} // namespace

// Every replaceable form that the library might pair with another, so that allocation and
// deallocation always meet in malloc/free (sanitizers check the pairing).
void* operator new(std::size_t size) {
  if (auto* ptr = counted_allocate(size))
    return ptr;
  throw std::bad_alloc{};
}

void* operator new[](std::size_t size) {
  if (auto* ptr = counted_allocate(size))
    return ptr;
  throw std::bad_alloc{};
}

void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return counted_allocate(size);
}

void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return counted_allocate(size);
}

// Both sides of every pair end in malloc/free, but once GCC inlines a replaced `operator
// delete` into a caller it sees `free` applied to a pointer from `operator new` and warns
// (-Wmismatched-new-delete); the pairing is right by construction here.
#if defined(__GNUC__) && !defined(__clang__)
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void operator delete(void* ptr) noexcept {
  std::free(ptr);
}

void operator delete[](void* ptr) noexcept {
  std::free(ptr);
}

void operator delete(void* ptr, std::size_t) noexcept {
  std::free(ptr);
}

void operator delete[](void* ptr, std::size_t) noexcept {
  std::free(ptr);
}

void operator delete(void* ptr, const std::nothrow_t&) noexcept {
  std::free(ptr);
}

void operator delete[](void* ptr, const std::nothrow_t&) noexcept {
  std::free(ptr);
}

#if defined(__GNUC__) && !defined(__clang__)
#  pragma GCC diagnostic pop
#endif

// -- tests --------------------------------------------------------------------------------

namespace {

tether::v1::Write decode(std::string_view bytes) {
  tether::v1::ClientFrame frame;
  REQUIRE(frame.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  REQUIRE(frame.has_write());
  return frame.write();
}

std::uint64_t series_id(const tether::v1::Sample& sample) {
  REQUIRE(sample.labels_size() == 1);
  REQUIRE(sample.labels(0).name() == "series");
  return std::stoull(sample.labels(0).value());
}

} // namespace

TEST_CASE("series_for_connection: every series belongs to exactly one connection") {
  for (auto [connections, series] : {std::pair<std::uint32_t, std::uint64_t>{4, 10'000},
                                     {3, 10},
                                     {7, 7},
                                     {1, 5},
                                     {16, 17}}) {
    INFO(connections << " connections, " << series << " series");
    std::multiset<std::uint64_t> seen;
    for (std::uint32_t c = 0; c < connections; ++c) {
      auto cycle = series_for_connection(c, connections, series);
      for (std::uint64_t i = 0; i < cycle.count; ++i)
        seen.insert(cycle.at(i));
    }
    REQUIRE(seen.size() == series);
    for (std::uint64_t id = 0; id < series; ++id)
      CHECK(seen.count(id) == 1);
  }
}

TEST_CASE("series_for_connection: fewer series than connections share ids") {
  CHECK(series_for_connection(0, 4, 2).at(5) == 0);
  CHECK(series_for_connection(1, 4, 2).at(5) == 1);
  CHECK(series_for_connection(2, 4, 2).at(0) == 0);
  CHECK(series_for_connection(3, 4, 2).at(0) == 1);
  CHECK(series_for_connection(3, 4, 2).count == 1);
}

TEST_CASE("batch_builder: counter batches cycle through the connection's series") {
  series_cycle cycle{1, 3, 4}; // ids 1, 4, 7, 10
  batch_builder builder{sample_kind::counter, 3, cycle};
  std::vector<std::uint64_t> ids;
  for (std::uint64_t seq = 1; seq <= 4; ++seq) {
    auto bytes = builder.next(seq, 3);
    CHECK(bytes.size() <= builder.max_frame_bytes());
    auto write = decode(bytes);
    CHECK(write.sequence() == seq);
    REQUIRE(write.samples_size() == 3);
    for (const auto& sample : write.samples()) {
      CHECK(sample.name() == "tether_load_total");
      CHECK(sample.kind() == tether::v1::COUNTER);
      CHECK(sample.counter_mode() == tether::v1::DELTA);
      CHECK(sample.value() == 1.0);
      CHECK(sample.timestamp_ms() == 0);
      ids.push_back(series_id(sample));
    }
  }
  CHECK(ids == std::vector<std::uint64_t>{1, 4, 7, 10, 1, 4, 7, 10, 1, 4, 7, 10});
}

TEST_CASE("batch_builder: a batch that is a multiple of the cycle keeps its labels") {
  batch_builder builder{sample_kind::counter, 4, series_cycle{0, 1, 2}};
  for (std::uint64_t seq = 1; seq <= 3; ++seq) {
    auto write = decode(builder.next(seq, 4));
    REQUIRE(write.samples_size() == 4);
    CHECK(series_id(write.samples(0)) == 0);
    CHECK(series_id(write.samples(1)) == 1);
    CHECK(series_id(write.samples(2)) == 0);
    CHECK(series_id(write.samples(3)) == 1);
  }
}

TEST_CASE("batch_builder: partial batches continue the cycle and can grow back") {
  batch_builder builder{sample_kind::counter, 4, series_cycle{0, 1, 3}};
  auto a = decode(builder.next(1, 2));
  REQUIRE(a.samples_size() == 2);
  CHECK(series_id(a.samples(0)) == 0);
  CHECK(series_id(a.samples(1)) == 1);
  auto b = decode(builder.next(2, 4));
  REQUIRE(b.samples_size() == 4);
  CHECK(series_id(b.samples(0)) == 2);
  CHECK(series_id(b.samples(3)) == 2);
  CHECK(b.samples(3).kind() == tether::v1::COUNTER);
  auto c = decode(builder.next(3, 0)); // clamped to one sample
  CHECK(c.samples_size() == 1);
  auto d = decode(builder.next(4, 99)); // clamped to the batch size
  CHECK(d.samples_size() == 4);
}

TEST_CASE("batch_builder: gauges carry the sequence as value") {
  batch_builder builder{sample_kind::gauge, 2, series_cycle{5, 1, 1}};
  auto write = decode(builder.next(42, 2));
  REQUIRE(write.samples_size() == 2);
  for (const auto& sample : write.samples()) {
    CHECK(sample.name() == "tether_load_value");
    CHECK(sample.kind() == tether::v1::GAUGE);
    CHECK(sample.value() == 42.0);
    CHECK(series_id(sample) == 5);
  }
}

TEST_CASE("batch_builder: max_frame_bytes bounds every frame") {
  series_cycle cycle{7, 1'000, 100'000}; // ids up to 99'999'007
  batch_builder builder{sample_kind::gauge, 100, cycle};
  std::size_t largest = 0;
  for (std::uint64_t seq : {1ULL, 300ULL, 1ULL << 40, ~0ULL}) {
    for (int i = 0; i < 50; ++i)
      largest = std::max(largest, builder.next(seq, 100).size());
  }
  CHECK(largest <= builder.max_frame_bytes());
}

TEST_CASE("batch_builder: the steady state does not allocate") {
  batch_builder builder{sample_kind::counter, 1000, series_for_connection(1, 4, 10'000)};
  std::uint64_t seq = 1;
  for (; seq <= 5; ++seq) // warm-up: label strings reach their final capacity
    builder.next(seq, 1000);
  {
    // The counter sees allocations made inside the protobuf library.
    allocation_counter counter;
    tether::v1::ClientFrame frame;
    frame.mutable_write()->add_samples()->set_name(std::string(64, 'x'));
    REQUIRE(counter.count() >= 2);
  }
  std::size_t allocated = 0;
  {
    allocation_counter counter;
    for (int i = 0; i < 100; ++i, ++seq)
      builder.next(seq, 1000);
    allocated = counter.count();
  }
  CHECK(allocated == 0);
}

TEST_CASE("metric_name: one name by default, id % M with --metrics") {
  CHECK(metric_name(sample_kind::counter, 0, 12345) == "tether_load_total");
  CHECK(metric_name(sample_kind::gauge, 0, 7) == "tether_load_value");
  CHECK(metric_name(sample_kind::counter, 100, 0) == "tether_load_0_total");
  CHECK(metric_name(sample_kind::counter, 100, 99) == "tether_load_99_total");
  CHECK(metric_name(sample_kind::counter, 100, 12345) == "tether_load_45_total");
  CHECK(metric_name(sample_kind::gauge, 100, 12345) == "tether_load_45_value");
  CHECK(metric_name(sample_kind::counter, 1, 12345) == "tether_load_0_total");
}

TEST_CASE("series_shape: groups are independent of metrics") {
  series_shape none;
  CHECK(none.group_of(12345) == 0);
  CHECK(none.folded_outputs(1'000'000) == 1);
  series_shape groups_only{0, 10};
  CHECK(groups_only.group_of(12345) == 5);
  CHECK(groups_only.folded_outputs(1'000'000) == 10);
  CHECK(groups_only.folded_outputs(3) == 3);
  series_shape both{100, 100};
  CHECK(both.group_of(12345) == 23); // 12345 / 100 = 123, % 100
  CHECK(both.folded_outputs(1'000'000) == 10'000);
  CHECK(both.folded_outputs(5'000) == 5'000);
}

TEST_CASE("series_shape: 1 M series over 100 metrics and 100 groups fold into 10 K") {
  // Dropping `series` keeps (metric, group): every pair occurs, each 100 times, and the
  // connections' cycles together cover each id once.
  series_shape shape{100, 100};
  constexpr std::uint64_t series = 1'000'000;
  constexpr std::uint32_t connections = 4;
  std::array<std::uint32_t, 100 * 100> inputs_of{};
  std::uint64_t ids = 0;
  for (std::uint32_t c = 0; c < connections; ++c) {
    auto cycle = series_for_connection(c, connections, series);
    for (std::uint64_t i = 0; i < cycle.count; ++i, ++ids) {
      auto id = cycle.at(i);
      ++inputs_of[(id % shape.metrics) * 100 + shape.group_of(id)];
    }
  }
  CHECK(ids == series);
  auto [lo, hi] = std::minmax_element(inputs_of.begin(), inputs_of.end());
  CHECK(*lo == 100);
  CHECK(*hi == 100);
}

namespace {

struct named_sample {
  std::string name;
  std::uint64_t group;
  std::uint64_t series;
};

named_sample read_grouped(const tether::v1::Sample& sample) {
  REQUIRE(sample.labels_size() == 2);
  REQUIRE(sample.labels(0).name() == "group");
  REQUIRE(sample.labels(1).name() == "series");
  return {sample.name(), std::stoull(sample.labels(0).value()),
          std::stoull(sample.labels(1).value())};
}

} // namespace

TEST_CASE("batch_builder: --metrics and --groups name every sample's series") {
  series_shape shape{3, 2};
  series_cycle cycle{0, 1, 8}; // ids 0..7
  batch_builder builder{sample_kind::counter, 3, cycle, shape};
  std::vector<named_sample> seen;
  for (std::uint64_t seq = 1; seq <= 4; ++seq) {
    auto bytes = builder.next(seq, 3);
    CHECK(bytes.size() <= builder.max_frame_bytes());
    auto write = decode(bytes);
    REQUIRE(write.samples_size() == 3);
    for (const auto& sample : write.samples()) {
      CHECK(sample.kind() == tether::v1::COUNTER);
      CHECK(sample.value() == 1.0);
      seen.push_back(read_grouped(sample));
    }
  }
  REQUIRE(seen.size() == 12);
  for (std::size_t i = 0; i < seen.size(); ++i) {
    auto id = i % 8;
    INFO("sample " << i);
    CHECK(seen[i].series == id);
    CHECK(seen[i].name == "tether_load_" + std::to_string(id % 3) + "_total");
    CHECK(seen[i].group == (id / 3) % 2);
  }
}

TEST_CASE("batch_builder: groups without metrics keep the single name") {
  batch_builder builder{sample_kind::gauge, 4, series_cycle{10, 1, 4}, series_shape{0, 3}};
  auto write = decode(builder.next(9, 4));
  REQUIRE(write.samples_size() == 4);
  for (int i = 0; i < 4; ++i) {
    auto s = read_grouped(write.samples(i));
    CHECK(s.name == "tether_load_value");
    CHECK(s.series == 10 + static_cast<std::uint64_t>(i));
    CHECK(s.group == (10 + static_cast<std::uint64_t>(i)) % 3);
    CHECK(write.samples(i).value() == 9.0);
  }
}

TEST_CASE("batch_builder: metrics without groups add no label") {
  batch_builder builder{sample_kind::counter, 2, series_cycle{0, 1, 2}, series_shape{5, 0}};
  auto write = decode(builder.next(1, 2));
  REQUIRE(write.samples_size() == 2);
  CHECK(write.samples(0).name() == "tether_load_0_total");
  CHECK(write.samples(1).name() == "tether_load_1_total");
  CHECK(series_id(write.samples(1)) == 1);
}

TEST_CASE("batch_builder: max_frame_bytes bounds frames with metrics and groups") {
  series_cycle cycle{3, 4, 250'000}; // ids up to 999'999
  batch_builder builder{sample_kind::gauge, 1000, cycle, series_shape{100'000, 100'000'000}};
  std::size_t largest = 0;
  for (std::uint64_t seq : {1ULL, 1ULL << 40, ~0ULL}) {
    for (int i = 0; i < 20; ++i)
      largest = std::max(largest, builder.next(seq, 1000).size());
  }
  CHECK(largest <= builder.max_frame_bytes());
}

TEST_CASE("batch_builder: the steady state with metrics and groups does not allocate") {
  batch_builder builder{sample_kind::counter, 1000, series_for_connection(1, 4, 1'000'000),
                        series_shape{100, 100}};
  // No warm-up: the prototype already holds the longest name.
  std::size_t allocated = 0;
  std::uint64_t seq = 1;
  {
    allocation_counter counter;
    for (int i = 0; i < 300; ++i, ++seq)
      builder.next(seq, 1000);
    allocated = counter.count();
  }
  CHECK(allocated == 0);
}

namespace {

/// The series ids named by the samples of a serialized write frame.
std::vector<std::uint64_t> frame_ids(std::string_view bytes) {
  tether::v1::ClientFrame frame;
  REQUIRE(frame.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  std::vector<std::uint64_t> out;
  for (const auto& sample : frame.write().samples()) {
    const auto& labels = sample.labels();
    out.push_back(std::stoull(labels[labels.size() - 1].value()));
  }
  return out;
}

} // namespace

TEST_CASE("batch_builder: ids() lists the series of the last batch") {
  batch_builder builder{sample_kind::counter, 4, series_cycle{1, 3, 5}};
  auto ids = frame_ids(builder.next(1, 4));
  CHECK(ids == std::vector<std::uint64_t>{1, 4, 7, 10});
  CHECK(builder.ids() == ids);
  ids = frame_ids(builder.next(2, 3));
  CHECK(ids == std::vector<std::uint64_t>{13, 1, 4});
  CHECK(builder.ids() == ids);
}

TEST_CASE("batch_builder: zipf keys draw from all ids, the hottest most often") {
  zipf_keys zipf{1000, 1.0, 5, 0};
  batch_builder builder{sample_kind::counter, 500, series_cycle{}, series_shape{}, zipf};
  std::vector<std::uint64_t> seen(1000, 0);
  for (std::uint64_t seq = 1; seq <= 200; ++seq) {
    auto ids = frame_ids(builder.next(seq, 500));
    REQUIRE(ids == builder.ids());
    for (auto id : ids) {
      REQUIRE(id < 1000);
      ++seen[id];
    }
  }
  // 100 000 draws: id 0 has probability 1 / H(1000) = 13.4 %, id 1 half of it.
  CHECK(static_cast<double>(seen[0]) / 100'000 == Approx(0.134).epsilon(0.05));
  CHECK(static_cast<double>(seen[1]) / static_cast<double>(seen[0]) == Approx(0.5).epsilon(0.1));
  CHECK(seen[0] > seen[10]);
  CHECK(seen[10] > seen[500]);
}

TEST_CASE("batch_builder: zipf draws depend on seed and connection only") {
  load_options opts;
  opts.keys = key_distribution::zipf;
  opts.series = 100'000;
  opts.batch = 100;
  opts.seed = 3;
  auto a = make_batch_builder(opts, 0);
  auto b = make_batch_builder(opts, 0);
  auto c = make_batch_builder(opts, 1);
  a.next(1, 100);
  b.next(1, 100);
  c.next(1, 100);
  CHECK(a.ids() == b.ids());
  CHECK(a.ids() != c.ids());
  opts.seed = 4;
  auto d = make_batch_builder(opts, 0);
  d.next(1, 100);
  CHECK(a.ids() != d.ids());
}

TEST_CASE("batch_builder: uniform keys from make_batch_builder keep the connection's cycle") {
  load_options opts;
  opts.connections = 4;
  opts.series = 10;
  opts.batch = 3;
  auto builder = make_batch_builder(opts, 1);
  builder.next(1, 3);
  CHECK(builder.ids() == std::vector<std::uint64_t>{1, 5, 9});
  builder.next(2, 3);
  CHECK(builder.ids() == std::vector<std::uint64_t>{1, 5, 9});
}

TEST_CASE("batch_builder: max_frame_bytes bounds zipf frames") {
  zipf_keys zipf{123'456'789, 0.5, 1, 0};
  batch_builder builder{sample_kind::gauge, 200, series_cycle{}, series_shape{1000, 77}, zipf};
  for (std::uint64_t seq = 1; seq <= 50; ++seq)
    CHECK(builder.next(seq * 1'000'000'007ULL, 200).size() <= builder.max_frame_bytes());
}

TEST_CASE("batch_builder: the steady state with zipf keys does not allocate") {
  zipf_keys zipf{1'000'000, 1.1, 1, 2};
  batch_builder builder{sample_kind::counter, 1000, series_cycle{}, series_shape{100, 100},
                        zipf};
  builder.next(1, 1000);
  builder.next(2, 1000);
  allocation_counter counter;
  for (std::uint64_t seq = 3; seq < 50; ++seq)
    builder.next(seq, 1000);
  CHECK(counter.count() == 0);
}

TEST_CASE("make_hello: producer id, token and protocol version") {
  tether::v1::ClientFrame frame;
  REQUIRE(frame.ParseFromString(make_hello("tether-load-0a1b2c3d-2", "secret")));
  REQUIRE(frame.has_hello());
  CHECK(frame.hello().producer_id() == "tether-load-0a1b2c3d-2");
  CHECK(frame.hello().token() == "secret");
  CHECK(frame.hello().protocol_version() == 1);
}
