#include "tether-load/batch_builder.hpp"

#include <catch2/catch.hpp>

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

TEST_CASE("make_hello: producer id, token and protocol version") {
  tether::v1::ClientFrame frame;
  REQUIRE(frame.ParseFromString(make_hello("tether-load-0a1b2c3d-2", "secret")));
  REQUIRE(frame.has_hello());
  CHECK(frame.hello().producer_id() == "tether-load-0a1b2c3d-2");
  CHECK(frame.hello().token() == "secret");
  CHECK(frame.hello().protocol_version() == 1);
}
