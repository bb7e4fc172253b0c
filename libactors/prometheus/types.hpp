#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace tether::prom {

/// A read-only view of contiguous elements owned elsewhere (C++17 has no std::span).
/// The viewed elements must outlive the view.
template <class T>
class array_view {
public:
  constexpr array_view() noexcept = default;

  constexpr array_view(const T* data, size_t size) noexcept
    : data_(data), size_(size) {
  }

  template <class Allocator>
  array_view(const std::vector<T, Allocator>& xs) noexcept
    : data_(xs.data()), size_(xs.size()) {
  }

  template <size_t N>
  constexpr array_view(const T (&xs)[N]) noexcept : data_(xs), size_(N) {
  }

  constexpr const T* data() const noexcept {
    return data_;
  }

  constexpr size_t size() const noexcept {
    return size_;
  }

  constexpr bool empty() const noexcept {
    return size_ == 0;
  }

  constexpr const T* begin() const noexcept {
    return data_;
  }

  constexpr const T* end() const noexcept {
    return data_ + size_;
  }

  constexpr const T& operator[](size_t i) const noexcept {
    return data_[i];
  }

private:
  const T* data_ = nullptr;
  size_t size_ = 0;
};

/// A label as a view of text owned elsewhere.
struct label {
  std::string_view name;
  std::string_view value;
};

inline bool operator==(const label& x, const label& y) noexcept {
  return x.name == y.name && x.value == y.value;
}

inline bool operator!=(const label& x, const label& y) noexcept {
  return !(x == y);
}

/// One remote-write sample: a float64 value at a Unix millisecond timestamp.
struct sample {
  double value = 0;
  int64_t timestamp_ms = 0;
};

/// The name of the label that carries the metric name in remote write.
inline constexpr std::string_view metric_name_label = "__name__";

} // namespace tether::prom
