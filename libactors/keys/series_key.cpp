#include "keys/series_key.hpp"

#include <algorithm>

namespace tether::keys {

namespace {

constexpr bool is_alpha(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

constexpr bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

size_t escaped_size(std::string_view value) noexcept {
  size_t n = value.size();
  for (char c : value)
    if (c == '\\' || c == '"' || c == '\n')
      ++n;
  return n;
}

} // namespace

void append_escaped_value(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

bool valid_metric_name(std::string_view name) noexcept {
  if (name.empty())
    return false;
  if (!is_alpha(name[0]) && name[0] != '_' && name[0] != ':')
    return false;
  for (char c : name.substr(1))
    if (!is_alpha(c) && !is_digit(c) && c != '_' && c != ':')
      return false;
  return true;
}

bool valid_label_name(std::string_view name) noexcept {
  if (name.empty() || (!is_alpha(name[0]) && name[0] != '_'))
    return false;
  if (name.size() >= 2 && name[0] == '_' && name[1] == '_')
    return false;
  for (char c : name.substr(1))
    if (!is_alpha(c) && !is_digit(c) && c != '_')
      return false;
  return true;
}

label_check normalise_labels(label_ref* labels, size_t& n, size_t max_labels) {
  // Names are checked on every label, empty values included: a bad name is bad input
  // even where its value makes the label absent.
  for (size_t i = 0; i < n; ++i)
    if (!valid_label_name(labels[i].name))
      return {errc::invalid_label_name, i};
  // Label sets are small: insertion sort beats std::sort and allocates nothing.
  for (size_t i = 1; i < n; ++i) {
    auto x = labels[i];
    size_t j = i;
    while (j > 0 && labels[j - 1].name > x.name) {
      labels[j] = labels[j - 1];
      --j;
    }
    labels[j] = x;
  }
  for (size_t i = 1; i < n; ++i)
    if (labels[i].name == labels[i - 1].name)
      return {errc::duplicate_label, i};
  // Empty values mean absent labels (Prometheus semantics): drop them, keeping order;
  // only the labels kept count against the limit.
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i)
    if (!labels[i].value.empty())
      labels[kept++] = labels[i];
  n = kept;
  if (n > max_labels)
    return {errc::too_many_labels, max_labels};
  return {};
}

size_t canonical_size(std::string_view name, const label_ref* labels, size_t n) {
  size_t size = name.size();
  if (n == 0)
    return size;
  size += 2; // braces
  for (size_t i = 0; i < n; ++i)
    size += labels[i].name.size() + 3 + escaped_size(labels[i].value); // ="" plus
  return size + (n - 1);                                                // commas
}

void append_canonical(std::string& out, std::string_view name,
                      const label_ref* labels, size_t n) {
  out.append(name.data(), name.size());
  if (n == 0)
    return;
  out += '{';
  for (size_t i = 0; i < n; ++i) {
    if (i > 0)
      out += ',';
    out.append(labels[i].name.data(), labels[i].name.size());
    out += "=\"";
    append_escaped_value(out, labels[i].value);
    out += '"';
  }
  out += '}';
}

namespace {

/// A small recursive-descent parser over key text.
class key_parser {
public:
  key_parser(std::string_view text, std::string& error)
    : text_(text), error_(error) {
  }

  errc run(parsed_key& out) {
    skip_space();
    auto name = take_while([](char c) {
      return is_alpha(c) || is_digit(c) || c == '_' || c == ':';
    });
    if (!valid_metric_name(name))
      return fail(errc::invalid_metric_name, "invalid metric name '"
                                               + std::string{name} + "'");
    out.name.assign(name.data(), name.size());
    skip_space();
    if (at_end())
      return errc::none;
    if (!consume('{'))
      return fail(errc::invalid_key, "expected '{' after the metric name");
    skip_space();
    if (consume('}'))
      return finish();
    for (;;) {
      skip_space();
      auto label = take_while(
        [](char c) { return is_alpha(c) || is_digit(c) || c == '_'; });
      if (label.empty())
        return fail(errc::invalid_key, "expected a label name");
      skip_space();
      if (!consume('='))
        return fail(errc::invalid_key, "expected '=' after label '"
                                         + std::string{label} + "'");
      skip_space();
      if (!consume('"'))
        return fail(errc::invalid_key, "expected '\"' to open the value of '"
                                         + std::string{label} + "'");
      std::string value;
      for (;;) {
        if (at_end())
          return fail(errc::invalid_key, "unterminated value of '"
                                           + std::string{label} + "'");
        char c = text_[pos_++];
        if (c == '"')
          break;
        if (c == '\\') {
          if (at_end())
            return fail(errc::invalid_key, "dangling escape");
          char e = text_[pos_++];
          if (e == 'n')
            value += '\n';
          else if (e == '\\' || e == '"')
            value += e;
          else
            return fail(errc::invalid_key, std::string{"unknown escape \\"} + e);
        } else {
          value += c;
        }
      }
      out.labels.emplace_back(std::string{label}, std::move(value));
      skip_space();
      if (consume('}'))
        return finish();
      if (!consume(','))
        return fail(errc::invalid_key, "expected ',' or '}' after a label value");
      skip_space();
      if (consume('}')) // trailing comma, as Prometheus allows
        return finish();
    }
  }

private:
  errc finish() {
    skip_space();
    if (!at_end())
      return fail(errc::invalid_key, "unexpected text after '}'");
    return errc::none;
  }

  errc fail(errc code, std::string msg) {
    error_ = std::move(msg);
    return code;
  }

  bool at_end() const {
    return pos_ >= text_.size();
  }

  bool consume(char c) {
    if (!at_end() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void skip_space() {
    while (!at_end() && (text_[pos_] == ' ' || text_[pos_] == '\t'))
      ++pos_;
  }

  template <class Pred>
  std::string_view take_while(Pred pred) {
    auto begin = pos_;
    while (!at_end() && pred(text_[pos_]))
      ++pos_;
    return text_.substr(begin, pos_ - begin);
  }

  std::string_view text_;
  std::string& error_;
  size_t pos_ = 0;
};

} // namespace

errc parse_key(std::string_view text, parsed_key& out, std::string& error) {
  out = parsed_key{};
  return key_parser{text, error}.run(out);
}

errc canonicalise(std::string_view text, size_t max_labels, size_t max_key_bytes,
                  std::string& out, std::string& error) {
  parsed_key parsed;
  if (auto code = parse_key(text, parsed, error); code != errc::none)
    return code;
  std::vector<label_ref> refs;
  refs.reserve(parsed.labels.size());
  for (auto& [name, value] : parsed.labels)
    refs.push_back({name, value});
  size_t n = refs.size();
  auto check = normalise_labels(refs.data(), n, max_labels);
  switch (check.code) {
    case errc::none:
      break;
    case errc::too_many_labels:
      error = "more than " + std::to_string(max_labels) + " labels";
      return check.code;
    case errc::duplicate_label:
      error = "label '" + std::string{refs[check.index].name} + "' appears twice";
      return check.code;
    default:
      error = "invalid label name '" + std::string{refs[check.index].name} + "'";
      return check.code;
  }
  auto size = canonical_size(parsed.name, refs.data(), n);
  if (size > max_key_bytes) {
    error = "key of " + std::to_string(size) + " bytes exceeds the limit of "
            + std::to_string(max_key_bytes);
    return errc::key_too_long;
  }
  out.clear();
  out.reserve(size);
  append_canonical(out, parsed.name, refs.data(), n);
  return errc::none;
}

} // namespace tether::keys
