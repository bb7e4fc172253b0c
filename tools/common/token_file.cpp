#include "common/token_file.hpp"

#include <fstream>

namespace tether::tools {

result<std::string> read_token_file(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    return fail("cannot read token file " + path);
  std::string line;
  std::getline(in, line);
  auto begin = line.find_first_not_of(" \t\r");
  auto end = line.find_last_not_of(" \t\r");
  if (begin == std::string::npos)
    return fail("token file " + path + " has no token on its first line");
  return line.substr(begin, end - begin + 1);
}

} // namespace tether::tools
