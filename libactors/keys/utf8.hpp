#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tether::keys {

/// Length of the well-formed UTF-8 sequence at the start of `text` (no overlong
/// forms, no surrogates, nothing above U+10FFFF), or 0 when it is not one.
size_t utf8_sequence_length(std::string_view text) noexcept;

/// Whether `text` is well-formed UTF-8 throughout.
bool valid_utf8(std::string_view text) noexcept;

/// Appends `text` for a human reader of an error message: well-formed UTF-8 is
/// copied, except control characters; those and every byte that is not part of a
/// well-formed sequence are written as `\xNN`. At most `max_bytes` of `text` are
/// shown, cut on a character boundary, followed by `...` when cut. The output is
/// always valid UTF-8.
void append_printable(std::string& out, std::string_view text,
                      size_t max_bytes = 64);

/// `text` as append_printable writes it, in single quotes.
std::string quoted(std::string_view text, size_t max_bytes = 64);

/// Returns `text` unchanged when it is valid UTF-8 and at most `max_bytes` long;
/// otherwise a copy with invalid bytes written as `\xNN` and cut on a character
/// boundary within `max_bytes` (then ending in `...`). Every message the node sends
/// passes through it.
std::string sanitised(std::string_view text, size_t max_bytes = 1024);

} // namespace tether::keys
