#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tether/errc.hpp"

namespace tether::keys {

/// A label as borrowed from a decoded message; the text it views must outlive it.
struct label_ref {
  std::string_view name;
  std::string_view value;
};

/// Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
bool valid_metric_name(std::string_view name) noexcept;

/// Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`. Names starting with `__` are
/// reserved and rejected as well.
bool valid_label_name(std::string_view name) noexcept;

/// Outcome of checking one label set.
struct label_check {
  errc code = errc::none;
  size_t index = 0; ///< invalid name: its index as given; duplicate: its sorted index
};

/// Most labels a sample or key may carry as sent, empty-valued ones included, when at
/// most `max_labels` may remain: twice that, and never fewer than 64.
size_t max_labels_sent(size_t max_labels) noexcept;

/// Checks every label name, sorts `labels` by name, refuses repeated names, then drops
/// labels with empty values (Prometheus treats them as absent). Sets `n` to the number
/// of labels kept; they occupy `labels[0..n)`. `max_labels` applies to those, and
/// `max_labels_sent(max_labels)` to the labels as given. Both counts are checked in
/// linear time before the O(n log n) sort, so the work is bounded by the limits.
label_check normalise_labels(label_ref* labels, size_t& n, size_t max_labels);

/// Bytes the canonical text of `name` plus normalised `labels[0..n)` takes.
size_t canonical_size(std::string_view name, const label_ref* labels, size_t n);

/// Appends a label value escaped as in the Prometheus exposition format: `\\`, `\"`
/// and `\n`.
void append_escaped_value(std::string& out, std::string_view value);

/// Appends the canonical key text `name{a="x",b="y"}` (values escaped as in the
/// Prometheus exposition format) for normalised labels.
void append_canonical(std::string& out, std::string_view name,
                      const label_ref* labels, size_t n);

/// A parsed series key: name and labels, owning their text.
struct parsed_key {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
};

/// Parses key text such as `up{job="api", instance="a:1"}`: labels in any order,
/// optional spaces around tokens, values in double quotes with `\\`, `\"` and `\n`
/// escapes. Returns errc::none on success, otherwise the code and `error` says why.
/// Stops with errc::too_many_labels at the first label beyond `max_labels`. Error
/// messages are valid UTF-8 whatever the text.
errc parse_key(std::string_view text, parsed_key& out, std::string& error,
               size_t max_labels = static_cast<size_t>(-1));

/// Parses and validates key text and returns its canonical form in `out`.
errc canonicalise(std::string_view text, size_t max_labels, size_t max_key_bytes,
                  std::string& out, std::string& error);

} // namespace tether::keys
