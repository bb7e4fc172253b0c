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

std::uint64_t series_shape::folded_outputs(std::uint64_t series) const noexcept {
  std::uint64_t m = metrics > 0 ? metrics : 1;
  std::uint64_t g = groups > 0 ? groups : 1;
  // Ids below m * g map to distinct (metric, group) pairs; later ids repeat them.
  return std::min(series, m * g);
}

std::string_view metric_name(sample_kind kind) {
  return kind == sample_kind::counter ? "tether_load_total" : "tether_load_value";
}

std::string metric_name(sample_kind kind, std::uint32_t metrics, std::uint64_t id) {
  if (metrics == 0)
    return std::string{metric_name(kind)};
  return "tether_load_" + std::to_string(id % metrics)
         + (kind == sample_kind::counter ? "_total" : "_value");
}

namespace {

/// Writes `value` in decimal into `out`. Assigning at most 20 characters to an existing
/// string does not allocate once its capacity suffices (small-string buffer or a previous
/// longer value).
void assign_decimal(std::string& out, std::uint64_t value) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), value);
  (void) ec; // 24 bytes hold any 64-bit value
  out.assign(digits, end);
}

} // namespace

batch_builder::batch_builder(sample_kind kind, std::uint32_t batch_size, series_cycle series,
                             series_shape shape, std::optional<zipf_keys> zipf,
                             std::shared_ptr<const id_subset> subset)
  : kind_(kind),
    batch_size_(std::max<std::uint32_t>(batch_size, 1)),
    series_(zipf ? series_cycle{0, 1, std::max<std::uint64_t>(zipf->series, 1)} : series),
    shape_(shape),
    labels_fixed_(!zipf && !subset && batch_size_ % series_.count == 0),
    subset_(subset && subset->size() > 0 ? std::move(subset) : nullptr) {
  if (zipf) {
    zipf_.emplace(series_.count, zipf->s);
    std::seed_seq seq{static_cast<std::uint32_t>(zipf->seed),
                      static_cast<std::uint32_t>(zipf->seed >> 32),
                      static_cast<std::uint32_t>(zipf->stream),
                      static_cast<std::uint32_t>(zipf->stream >> 32)};
    engine_.seed(seq);
  }
  ids_.reserve(batch_size_);
  names_.reserve(shape_.metrics);
  for (std::uint32_t k = 0; k < shape_.metrics; ++k)
    names_.push_back(metric_name(kind, shape_.metrics, k));
  // The longest name (the last: names grow with the digits of k) goes into the prototype,
  // so every sample's name string starts with enough capacity for any name.
  prototype_.set_name(names_.empty() ? std::string{metric_name(kind)} : names_.back());
  if (shape_.groups > 0) {
    auto* group = prototype_.add_labels();
    group->set_name("group");
    group->set_value("0");
    series_label_ = 1;
  }
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
  // Worst case: the longest metric name, the widest group and series ids in every sample
  // and the largest sequence varint. Each field's encoding only grows with the string
  // length, the digit count or the varint length, so this bounds every frame `next` can
  // produce.
  auto widest_id = series_.first + (series_.count - 1) * series_.stride;
  auto widest_group = shape_.groups > 0 ? shape_.groups - 1 : 0;
  auto& write = *frame_.mutable_write();
  write.set_sequence(std::numeric_limits<std::uint64_t>::max());
  for (auto& sample : *write.mutable_samples()) {
    set_fields(sample, names_.empty() ? nullptr : &names_.back(), widest_group, widest_id);
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
  set_fields(sample, names_.empty() ? nullptr : &names_[id % names_.size()],
             shape_.group_of(id), id);
}

void batch_builder::set_fields(tether::v1::Sample& sample, const std::string* name,
                               std::uint64_t group, std::uint64_t id) {
  // Assignments into strings whose capacity already fits: no allocation.
  if (name != nullptr)
    sample.mutable_name()->assign(*name);
  if (shape_.groups > 0)
    assign_decimal(*sample.mutable_labels(0)->mutable_value(), group);
  assign_decimal(*sample.mutable_labels(series_label_)->mutable_value(), id);
}

std::string_view batch_builder::next(std::uint64_t sequence, std::uint32_t size) {
  size = std::clamp<std::uint32_t>(size, 1, batch_size_);
  auto& write = *frame_.mutable_write();
  if (static_cast<std::uint32_t>(write.samples_size()) != size)
    resize(size);
  write.set_sequence(sequence);
  bool rewrite_labels = !(labels_fixed_ && labels_written_ && size == batch_size_);
  auto gauge_value = static_cast<double>(sequence);
  ids_.resize(size); // within the reserved capacity: no allocation
  for (std::uint32_t i = 0; i < size; ++i) {
    auto& sample = *write.mutable_samples(static_cast<int>(i));
    auto id = subset_   ? (subset_->weighted() ? subset_->draw(engine_)
                                                   : subset_->at(cursor_ + i))
              : zipf_ ? (*zipf_)(engine_)
                      : series_.at(cursor_ + i);
    ids_[i] = id;
    if (rewrite_labels)
      set_series(sample, id);
    if (kind_ == sample_kind::gauge)
      sample.set_value(gauge_value);
  }
  labels_written_ = true;
  if (subset_ && !subset_->weighted())
    cursor_ = (cursor_ + size) % subset_->size();
  else if (!zipf_)
    cursor_ = (cursor_ + size) % series_.count;
  auto bytes = frame_.ByteSizeLong();
  buffer_.resize(bytes);
  frame_.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(buffer_.data()));
  return std::string_view{buffer_.data(), buffer_.size()};
}

batch_builder make_batch_builder(const load_options& opts, std::uint32_t conn,
                                 std::shared_ptr<const id_subset> subset) {
  std::optional<zipf_keys> zipf;
  if (opts.keys == key_distribution::zipf)
    zipf = zipf_keys{opts.series, opts.zipf_s, opts.seed, conn};
  // A routed connection's ids may be any of the run's: size its frames for all of them.
  auto cycle = subset ? series_cycle{0, 1, opts.series}
                      : series_for_connection(conn, opts.connections, opts.series);
  return batch_builder{opts.kind, opts.batch, cycle, series_shape{opts.metrics, opts.groups},
                       zipf, std::move(subset)};
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
