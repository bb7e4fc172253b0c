#include "wire/keyed_batch.hpp"

#include <cmath>

#include "keys/slicing.hpp"
#include "keys/utf8.hpp"
#include "prometheus/remote_write.hpp"
#include "rules/rule_set.hpp"
#include "wire/tether.pb.h"
#include "wire/write_view.hpp"

namespace tether::wire {

namespace {

using keys::quoted;

/// Read access to protobuf samples for the shared validation code.
struct proto_source {
  const v1::Write& w;

  size_t size() const {
    return static_cast<size_t>(w.samples_size());
  }
  std::string_view name(size_t i) const {
    return w.samples(i).name();
  }
  size_t label_count(size_t i) const {
    return static_cast<size_t>(w.samples(i).labels_size());
  }
  keys::label_ref label(size_t i, size_t j) const {
    auto& l = w.samples(i).labels(j);
    return {l.name(), l.value()};
  }
  int kind(size_t i) const {
    return w.samples(i).kind();
  }
  int mode(size_t i) const {
    return w.samples(i).counter_mode();
  }
  double value(size_t i) const {
    return w.samples(i).value();
  }
  int64_t timestamp(size_t i) const {
    return w.samples(i).timestamp_ms();
  }
};

/// Read access to a write read in place from its frame.
struct view_source {
  const write_view& w;

  size_t size() const {
    return w.samples.size();
  }
  std::string_view name(size_t i) const {
    return w.samples[i].name;
  }
  size_t label_count(size_t i) const {
    return w.samples[i].label_end - w.samples[i].label_begin;
  }
  keys::label_ref label(size_t i, size_t j) const {
    auto& l = w.labels[w.samples[i].label_begin + j];
    return {l.name, l.value};
  }
  int kind(size_t i) const {
    return w.samples[i].kind;
  }
  int mode(size_t i) const {
    return w.samples[i].mode;
  }
  double value(size_t i) const {
    return w.samples[i].value;
  }
  int64_t timestamp(size_t i) const {
    return w.samples[i].timestamp_ms;
  }
};

/// Read access to embedding samples.
struct sample_source {
  const std::vector<sample>& xs;

  size_t size() const {
    return xs.size();
  }
  std::string_view name(size_t i) const {
    return xs[i].name;
  }
  size_t label_count(size_t i) const {
    return xs[i].labels.size();
  }
  keys::label_ref label(size_t i, size_t j) const {
    auto& l = xs[i].labels[j];
    return {l.first, l.second};
  }
  int kind(size_t i) const {
    return static_cast<int>(xs[i].kind);
  }
  int mode(size_t i) const {
    return static_cast<int>(xs[i].mode);
  }
  double value(size_t i) const {
    return xs[i].value;
  }
  int64_t timestamp(size_t i) const {
    return xs[i].timestamp_ms;
  }
};

/// Read access to a remote-write request, one entry per (series, sample) that is not
/// a stale marker.
struct remote_source {
  struct entry {
    const prom::series_view* series;
    const prom::sample* sample;
    int kind;
    int mode;
  };
  std::vector<entry> entries;

  remote_source(const prom::write_request_view& req, size_t& stale) {
    for (auto& s : req.series) {
      auto [kind, mode] = kind_of(req, s.name);
      for (auto& x : s.samples) {
        if (prom::is_stale_marker(x.value)) {
          ++stale;
          continue;
        }
        entries.push_back(entry{&s, &x, kind, mode});
      }
    }
  }

  static std::pair<int, int> kind_of(const prom::write_request_view& req,
                                     std::string_view name) {
    auto ends_with = [&](std::string_view suffix) {
      return name.size() >= suffix.size()
             && name.substr(name.size() - suffix.size()) == suffix;
    };
    const auto* meta = req.metadata_for_series(name);
    auto type = meta ? meta->type : prom::metric_type::unknown;
    bool cumulative
      = type == prom::metric_type::counter || ends_with("_total")
        || ((type == prom::metric_type::histogram || type == prom::metric_type::summary
             || type == prom::metric_type::unknown)
            && (ends_with("_bucket") || ends_with("_count") || ends_with("_sum")));
    if (type == prom::metric_type::gauge)
      cumulative = false;
    return cumulative ? std::pair{1, 1} : std::pair{2, 0};
  }

  size_t size() const {
    return entries.size();
  }
  std::string_view name(size_t i) const {
    return entries[i].series->name;
  }
  size_t label_count(size_t i) const {
    return entries[i].series->labels.size();
  }
  keys::label_ref label(size_t i, size_t j) const {
    auto& l = entries[i].series->labels[j];
    return {l.name, l.value};
  }
  int kind(size_t i) const {
    return entries[i].kind;
  }
  int mode(size_t i) const {
    return entries[i].mode;
  }
  double value(size_t i) const {
    return entries[i].sample->value;
  }
  int64_t timestamp(size_t i) const {
    return entries[i].sample->timestamp_ms;
  }
};

batch_error sample_error(errc code, size_t index, std::string msg) {
  return {code, "sample " + std::to_string(index) + ": " + std::move(msg),
          static_cast<int32_t>(index)};
}

} // namespace

template <class Source>
batch_error batch_keyer::run(uint64_t sequence, const Source& src, int64_t now_ms,
                             const rules::rule_set& rules, keyed_batch& out) {
  if (sequence == 0)
    return {errc::invalid_sequence, "sequence must be greater than 0", -1};
  auto n = src.size();
  if (n == 0)
    return {errc::empty_batch, "write carries no samples", -1};
  if (n > limits_.max_samples_per_batch)
    return {errc::too_many_samples,
            std::to_string(n) + " samples exceed the limit of "
              + std::to_string(limits_.max_samples_per_batch) + " per batch",
            -1};
  out.sequence = sequence;
  out.keys.clear();
  out.samples.clear();
  out.samples.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto name = src.name(i);
    if (!keys::valid_metric_name(name))
      return sample_error(errc::invalid_metric_name, i,
                          "invalid metric name " + quoted(name));
    auto k = src.kind(i);
    if (k < 1 || k > 3)
      return sample_error(errc::unknown_kind, i,
                          "unknown kind " + std::to_string(k));
    auto m = src.mode(i);
    if (m < 0 || m > 1)
      return sample_error(errc::unknown_kind, i,
                          "unknown counter_mode " + std::to_string(m));
    auto v = src.value(i);
    if (!std::isfinite(v))
      return sample_error(errc::non_finite_value, i,
                          "value must be finite, got " + std::to_string(v));
    auto kk = static_cast<tether::kind>(k);
    if (kk == kind::counter && v < 0)
      return sample_error(errc::negative_counter, i,
                          "counter value " + std::to_string(v) + " is below zero");
    auto ts = src.timestamp(i);
    if (ts < 0)
      return sample_error(errc::invalid_timestamp, i,
                          "timestamp_ms " + std::to_string(ts) + " is negative");
    if (ts > now_ms + static_cast<int64_t>(limits_.max_future_ms))
      return sample_error(errc::invalid_timestamp, i,
                          "timestamp_ms " + std::to_string(ts) + " is more than "
                            + std::to_string(limits_.max_future_ms)
                            + " ms ahead of this node's clock");
    size_t nl = src.label_count(i);
    scratch_.resize(nl);
    for (size_t j = 0; j < nl; ++j)
      scratch_[j] = src.label(i, j);
    auto check = keys::normalise_labels(scratch_.data(), nl,
                                        limits_.max_labels_per_sample);
    switch (check.code) {
      case errc::none:
        break;
      case errc::too_many_labels:
        return sample_error(check.code, i,
                            "more than "
                              + std::to_string(limits_.max_labels_per_sample)
                              + " labels");
      case errc::duplicate_label:
        return sample_error(check.code, i,
                            "label " + quoted(scratch_[check.index].name)
                              + " appears twice");
      default:
        return sample_error(check.code, i,
                            "invalid label name "
                              + quoted(scratch_[check.index].name));
    }
    auto size = keys::canonical_size(name, scratch_.data(), nl);
    if (size > limits_.max_key_bytes)
      return sample_error(errc::key_too_long, i,
                          "series key of " + std::to_string(size)
                            + " bytes exceeds the limit of "
                            + std::to_string(limits_.max_key_bytes));
    keyed_sample ks;
    ks.key_offset = static_cast<uint32_t>(out.keys.size());
    const auto* rule = rules.match(name, scratch_.data(), nl);
    if (rule == nullptr) {
      keys::append_canonical(out.keys, name, scratch_.data(), nl);
      ks.key_size = static_cast<uint32_t>(size);
      ks.hash = keys::key_hash(out.key(ks));
      ks.input_hash = ks.hash;
      ks.window_ms = rules.defaults().window_ms;
    } else {
      // The rule folds the input series into its output series: the output key keeps
      // the labels the rule keeps, under the rule's output name.
      input_key_.clear();
      keys::append_canonical(input_key_, name, scratch_.data(), nl);
      ks.input_hash = keys::key_hash(input_key_);
      kept_.resize(nl);
      auto nk = rules::output_labels(*rule, scratch_.data(), nl, kept_.data());
      std::string_view out_name = rule->output_name.empty()
                                    ? name
                                    : std::string_view{rule->output_name};
      auto out_size = keys::canonical_size(out_name, kept_.data(), nk);
      if (out_size > limits_.max_key_bytes)
        return sample_error(errc::key_too_long, i,
                            "output key of rule '" + rule->name + "' has "
                              + std::to_string(out_size)
                              + " bytes, above the limit of "
                              + std::to_string(limits_.max_key_bytes));
      keys::append_canonical(out.keys, out_name, kept_.data(), nk);
      ks.key_size = static_cast<uint32_t>(out_size);
      ks.hash = keys::key_hash(out.key(ks));
      ks.window_ms = rule->window_ms;
      ks.rule = rule->index + 1;
    }
    ks.slice = keys::slice_of(ks.hash, slice_count_);
    ks.kind = kk;
    ks.mode = kk == kind::counter ? static_cast<counter_mode>(m)
                                  : counter_mode::delta;
    ks.value = v;
    ks.timestamp_ms = ts == 0 ? now_ms : ts;
    out.samples.push_back(ks);
  }
  return {};
}

batch_error batch_keyer::key(uint64_t sequence, const prom::write_request_view& req,
                             int64_t now_ms, const rules::rule_set& rules,
                             keyed_batch& out, size_t& stale_markers) {
  stale_markers = 0;
  remote_source src{req, stale_markers};
  return run(sequence, src, now_ms, rules, out);
}

batch_error batch_keyer::key(const v1::Write& write, int64_t now_ms,
                             const rules::rule_set& rules, keyed_batch& out) {
  return run(write.sequence(), proto_source{write}, now_ms, rules, out);
}

batch_error batch_keyer::key(const write_view& write, int64_t now_ms,
                             const rules::rule_set& rules, keyed_batch& out) {
  return run(write.sequence, view_source{write}, now_ms, rules, out);
}

batch_error batch_keyer::key(uint64_t sequence, const std::vector<sample>& xs,
                             int64_t now_ms, const rules::rule_set& rules,
                             keyed_batch& out) {
  return run(sequence, sample_source{xs}, now_ms, rules, out);
}

} // namespace tether::wire
