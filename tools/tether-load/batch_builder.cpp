#include "batch_builder.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

namespace tether::tools::load {

series_cycle series_for_connection(std::uint32_t conn, std::uint32_t connections,
                                   std::uint64_t series) {
  if (conn >= series)
    return series_cycle{conn % series, 1, 1};
  // ids c, c + n, ... below `series`: ceil((series - c) / n) of them.
  auto count = (series - conn + connections - 1) / connections;
  return series_cycle{conn, connections, count};
}

std::string_view metric_name(sample_kind kind) {
  return kind == sample_kind::counter ? "tether_load_total" : "tether_load_value";
}

batch_builder::batch_builder(sample_kind kind, std::uint32_t batch_size, series_cycle series)
  : kind_(kind),
    batch_size_(std::max<std::uint32_t>(batch_size, 1)),
    series_(series),
    labels_fixed_(batch_size_ % series.count == 0) {
  prototype_.set_name(std::string{metric_name(kind)});
  auto* label = prototype_.add_labels();
  label->set_name("series");
  label->set_value("0");
  if (kind == sample_kind::counter) {
    prototype_.set_kind(tether::v1::COUNTER);
    prototype_.set_counter_mode(tether::v1::DELTA);
    prototype_.set_value(1.0);
  } else {
    prototype_.set_kind(tether::v1::GAUGE);
    prototype_.set_value(0.0);
  }
  frame_.mutable_write()->mutable_samples()->Reserve(static_cast<int>(batch_size_));
  resize(batch_size_);
  // Worst case: the widest series id in every sample and the largest sequence varint.
  // Each field's encoding only grows with the digit count or the varint length, so this
  // bounds every frame `next` can produce.
  auto widest_id = series_.first + (series_.count - 1) * series_.stride;
  auto& write = *frame_.mutable_write();
  write.set_sequence(std::numeric_limits<std::uint64_t>::max());
  for (auto& sample : *write.mutable_samples()) {
    set_series(sample, widest_id);
    if (kind_ == sample_kind::gauge)
      sample.set_value(1.5); // a non-zero double is always 8 bytes
  }
  max_frame_bytes_ = frame_.ByteSizeLong();
  buffer_.reserve(max_frame_bytes_);
}

void batch_builder::resize(std::uint32_t size) {
  auto* samples = frame_.mutable_write()->mutable_samples();
  auto current = static_cast<std::uint32_t>(samples->size());
  if (size < current) {
    samples->DeleteSubrange(static_cast<int>(size), static_cast<int>(current - size));
  } else {
    for (; current < size; ++current)
      *samples->Add() = prototype_;
  }
  // The labels of re-added samples hold the prototype's id: rewrite on the next batch.
  labels_written_ = false;
}

void batch_builder::set_series(tether::v1::Sample& sample, std::uint64_t id) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), id);
  (void) ec; // 24 bytes hold any 64-bit value
  // Assigning at most 20 characters to an existing string does not allocate once its
  // capacity suffices (small-string buffer or a previous longer id).
  sample.mutable_labels(0)->mutable_value()->assign(digits, end);
}

std::string_view batch_builder::next(std::uint64_t sequence, std::uint32_t size) {
  size = std::clamp<std::uint32_t>(size, 1, batch_size_);
  auto& write = *frame_.mutable_write();
  if (static_cast<std::uint32_t>(write.samples_size()) != size)
    resize(size);
  write.set_sequence(sequence);
  bool rewrite_labels = !(labels_fixed_ && labels_written_ && size == batch_size_);
  auto gauge_value = static_cast<double>(sequence);
  for (std::uint32_t i = 0; i < size; ++i) {
    auto& sample = *write.mutable_samples(static_cast<int>(i));
    if (rewrite_labels)
      set_series(sample, series_.at(cursor_ + i));
    if (kind_ == sample_kind::gauge)
      sample.set_value(gauge_value);
  }
  labels_written_ = true;
  cursor_ = (cursor_ + size) % series_.count;
  auto bytes = frame_.ByteSizeLong();
  buffer_.resize(bytes);
  frame_.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(buffer_.data()));
  return std::string_view{buffer_.data(), buffer_.size()};
}

std::string make_hello(const std::string& producer_id, const std::string& token) {
  tether::v1::ClientFrame frame;
  auto* hello = frame.mutable_hello();
  hello->set_producer_id(producer_id);
  hello->set_token(token);
  hello->set_protocol_version(1);
  return frame.SerializeAsString();
}

} // namespace tether::tools::load
