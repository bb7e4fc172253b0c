#pragma once

#include <string>
#include <string_view>

namespace tether::tools::ctl {

/// Percent-encodes `text` for use as a URL query parameter value: every byte except the
/// RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) becomes `%XX` with upper-case
/// hex digits, so series keys with `{ } " = , +` and spaces survive intact.
std::string url_encode(std::string_view text);

} // namespace tether::tools::ctl
