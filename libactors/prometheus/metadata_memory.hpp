#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>

#include "prometheus/remote_write.hpp"

namespace tether::prom {

/// The latest type of every metric family that remote-write metadata described, so
/// that requests without metadata are typed as their family was last described:
/// Prometheus sends metadata in requests of its own (once a minute by default), not
/// with the samples. Families of `unknown` type are not remembered. At most
/// `capacity` families; the one described longest ago is forgotten first.
/// Thread-safe.
class metadata_memory {
public:
  explicit metadata_memory(size_t capacity);

  /// Remembers the types `request` states (the first entry of a family wins within
  /// one request, as in `write_request_view::find_metadata`).
  void remember(const write_request_view& request);

  /// Whether a remembered type applies to a series of `request` that the request
  /// does not describe. If so, `out` gets the request's series and metadata plus the
  /// remembered entries, sorted by family, with their names owned by `names`;
  /// otherwise `out` and `names` are left alone.
  bool complete(const write_request_view& request, write_request_view& out,
                std::deque<std::string>& names) const;

  /// Families remembered.
  size_t size() const;

private:
  const std::pair<metric_type, uint64_t>* find(std::string_view family) const;

  mutable std::mutex mtx_;
  size_t capacity_;
  uint64_t clock_ = 0;
  std::map<std::string, std::pair<metric_type, uint64_t>, std::less<>> types_;
  std::map<uint64_t, std::string> order_; ///< when described -> family
};

} // namespace tether::prom
