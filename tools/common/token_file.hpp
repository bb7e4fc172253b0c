#pragma once

#include <string>

#include "common/result.hpp"

namespace tether::tools {

/// The token in the first line of the file at `path`, without surrounding blanks;
/// a failure names the file when it cannot be read or its first line is empty.
/// Keeps tokens off command lines, where other users of the machine can see them.
/// Thread safety: reentrant.
result<std::string> read_token_file(const std::string& path);

} // namespace tether::tools
