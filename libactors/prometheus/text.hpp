#pragma once

// Text rules shared by the remote-write codec and the exposition writer. Private to
// this folder: nothing outside libactors/prometheus includes it except tests.

#include <cstdint>
#include <string>
#include <string_view>

namespace tether::prom::internal {

/// Whether `text` is well-formed UTF-8: no overlong forms, no surrogates, nothing
/// above U+10FFFF, no truncated sequences.
bool valid_utf8(std::string_view text) noexcept;

/// Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
bool valid_metric_name(std::string_view name) noexcept;

/// Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`.
bool valid_label_name(std::string_view name) noexcept;

/// Appends a float in the form the exposition format reads: `NaN`, `+Inf`, `-Inf`;
/// integral values below 1e15 in magnitude as plain integers (`1000000`, not
/// `1e+06`); values of 1e15 and above in magnitude with an exponent and the shortest
/// digits that read back to the same double (`1e+15`, `1.2345678901234568e+20`);
/// everything else in the shortest such form, fixed or with an exponent, whichever
/// is shorter (`0.1`, `1.5e-07`).
void append_double(std::string& out, double value);

/// Appends a signed decimal integer.
void append_int(std::string& out, int64_t value);

/// Appends an unsigned decimal integer.
void append_uint(std::string& out, uint64_t value);

/// Appends `text` escaped for a `# HELP` line: `\` as `\\`, newline as `\n`.
void append_escaped_help(std::string& out, std::string_view text);

/// Appends `text` escaped for a quoted label value: `\` as `\\`, `"` as `\"`,
/// newline as `\n`.
void append_escaped_label_value(std::string& out, std::string_view text);

} // namespace tether::prom::internal
