#include "gateway/dashboard/assets.hpp"

namespace tether::gateway::dashboard {

const asset* find_asset(std::string_view path) {
  if (path == "/ui" || path == "/ui/")
    path = "/ui/index.html";
  for (std::size_t i = 0; i < asset_count; ++i)
    if (assets[i].path == path)
      return &assets[i];
  return nullptr;
}

bool is_ui_path(std::string_view path) {
  return path == "/ui" || path.substr(0, 4) == "/ui/";
}

} // namespace tether::gateway::dashboard
