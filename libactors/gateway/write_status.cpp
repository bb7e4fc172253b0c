#include "gateway/write_status.hpp"

namespace tether::gateway {

namespace http = boost::beast::http;

http::status write_failure_status(errc code) {
  if (code == errc::permission_denied)
    return http::status::forbidden;
  if (retryable(code))
    return http::status::service_unavailable;
  if (code == errc::internal)
    return http::status::internal_server_error;
  return http::status::bad_request;
}

} // namespace tether::gateway
