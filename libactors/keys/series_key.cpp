#include "keys/series_key.hpp"

#include <algorithm>
#include <cstring>

#include "keys/utf8.hpp"

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

/// Copies `bytes` to `p`; returns the end.
char* put(char* p, std::string_view bytes) noexcept {
  if (!bytes.empty()) // an empty view may have no data pointer
    std::memcpy(p, bytes.data(), bytes.size());
  return p + bytes.size();
}

/// Writes `value` escaped (`\\`, `\"`, `\n`) to `p`, which has room for
/// `escaped_size(value)` bytes; returns the end. Runs without a character to escape
/// are copied whole: a key is written with a few copies, not a call per character.
char* write_escaped(char* p, std::string_view value) noexcept {
  size_t from = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c != '\\' && c != '"' && c != '\n')
      continue;
    p = put(p, value.substr(from, i - from));
    *p++ = '\\';
    *p++ = c == '\n' ? 'n' : c;
    from = i + 1;
  }
  return put(p, value.substr(from));
}

} // namespace

void append_escaped_value(std::string& out, std::string_view value) {
  auto at = out.size();
  out.resize(at + escaped_size(value));
  write_escaped(out.data() + at, value);
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

size_t max_labels_sent(size_t max_labels) noexcept {
  return std::max<size_t>(64, 2 * max_labels);
}

label_check normalise_labels(label_ref* labels, size_t& n, size_t max_labels) {
  // Counts first, in linear time, so that no hostile label count reaches the sort.
  // Names are checked on every label, empty values included: a bad name is bad input
  // even where its value makes the label absent.
  if (n > max_labels_sent(max_labels))
    return {errc::too_many_labels, max_labels};
  size_t non_empty = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!valid_label_name(labels[i].name))
      return {errc::invalid_label_name, i};
    non_empty += labels[i].value.empty() ? 0 : 1;
  }
  if (non_empty > max_labels)
    return {errc::too_many_labels, max_labels};
  std::sort(labels, labels + n, [](const label_ref& x, const label_ref& y) {
    return x.name < y.name;
  });
  for (size_t i = 1; i < n; ++i)
    if (labels[i].name == labels[i - 1].name)
      return {errc::duplicate_label, i};
  // Empty values mean absent labels (Prometheus semantics): drop them, keeping order.
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i)
    if (!labels[i].value.empty())
      labels[kept++] = labels[i];
  n = kept;
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
  auto at = out.size();
  out.resize(at + canonical_size(name, labels, n));
  char* p = put(out.data() + at, name);
  if (n == 0)
    return;
  *p++ = '{';
  for (size_t i = 0; i < n; ++i) {
    if (i > 0)
      *p++ = ',';
    p = put(p, labels[i].name);
    *p++ = '=';
    *p++ = '"';
    p = write_escaped(p, labels[i].value);
    *p++ = '"';
  }
  *p = '}';
}

namespace {

/// A small recursive-descent parser over key text.
class key_parser {
public:
  key_parser(std::string_view text, size_t max_labels, std::string& error)
    : text_(text), max_labels_(max_labels), error_(error) {
  }

  errc run(parsed_key& out) {
    skip_space();
    auto name = take_while([](char c) {
      return is_alpha(c) || is_digit(c) || c == '_' || c == ':';
    });
    if (!valid_metric_name(name))
      return fail(errc::invalid_metric_name,
                  "invalid metric name " + quoted(name));
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
      if (out.labels.size() >= max_labels_)
        return fail(errc::too_many_labels,
                    "more than " + std::to_string(max_labels_) + " labels");
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
          else {
            std::string msg = "unknown escape ";
            append_printable(msg, text_.substr(pos_ - 2, 2));
            return fail(errc::invalid_key, std::move(msg));
          }
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
  size_t max_labels_;
  std::string& error_;
  size_t pos_ = 0;
};

} // namespace

errc parse_key(std::string_view text, parsed_key& out, std::string& error,
               size_t max_labels) {
  out = parsed_key{};
  return key_parser{text, max_labels, error}.run(out);
}

errc canonicalise(std::string_view text, size_t max_labels, size_t max_key_bytes,
                  std::string& out, std::string& error) {
  parsed_key parsed;
  auto code = parse_key(text, parsed, error, max_labels_sent(max_labels));
  if (code == errc::too_many_labels)
    error = "more than " + std::to_string(max_labels) + " labels";
  if (code != errc::none)
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
      error = "label " + quoted(refs[check.index].name) + " appears twice";
      return check.code;
    default:
      error = "invalid label name " + quoted(refs[check.index].name);
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
