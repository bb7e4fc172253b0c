#include "gateway/query.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

namespace tether::gateway {

std::optional<std::string> query_value(std::string_view target, std::string_view name) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url)
    return std::nullopt;
  auto params = url->params(); // decoded, '+' as space
  auto it = params.find(name);
  if (it == params.end())
    return std::nullopt;
  auto param = *it;
  return param.has_value ? std::string{param.value} : std::string{};
}

} // namespace tether::gateway
