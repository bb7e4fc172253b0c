#pragma once

#include <string>
#include <utility>
#include <variant>

namespace tether::tools {

/// A human-readable failure description carried by `result`.
struct failure {
  std::string message;
};

/// Either a value of type `T` or a `failure`; the tools' way of returning errors as values.
/// Thread safety: none beyond that of `T`.
template <class T>
class result {
public:
  result(T value) : data_(std::in_place_index<0>, std::move(value)) {
    // nop
  }

  result(failure err) : data_(std::in_place_index<1>, std::move(err)) {
    // nop
  }

  /// True when a value is present.
  explicit operator bool() const noexcept {
    return data_.index() == 0;
  }

  /// True when a value is present.
  bool has_value() const noexcept {
    return data_.index() == 0;
  }

  /// The value. Precondition: `has_value()`.
  T& value() & {
    return std::get<0>(data_);
  }

  /// The value. Precondition: `has_value()`.
  const T& value() const& {
    return std::get<0>(data_);
  }

  /// The value, moved out. Precondition: `has_value()`.
  T&& value() && {
    return std::get<0>(std::move(data_));
  }

  T& operator*() & {
    return value();
  }

  const T& operator*() const& {
    return value();
  }

  T* operator->() {
    return &value();
  }

  const T* operator->() const {
    return &value();
  }

  /// The failure message. Precondition: `!has_value()`.
  const std::string& error() const {
    return std::get<1>(data_).message;
  }

private:
  std::variant<T, failure> data_;
};

/// Shorthand for building a failed result.
inline failure fail(std::string message) {
  return failure{std::move(message)};
}

} // namespace tether::tools
