#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tether::gateway {

/// The value of query parameter `name` in HTTP request target `target` (path and
/// query, RFC 3986 origin form), percent-decoded, with '+' read as a space as HTML
/// forms send it. The first of repeated parameters counts; a parameter without '='
/// has the empty value. Nothing when the parameter is absent or when the target is
/// not a valid origin-form URL (a bad escape, or characters a client must encode,
/// such as a raw '{' or '"' of a series key).
std::optional<std::string> query_value(std::string_view target, std::string_view name);

} // namespace tether::gateway
