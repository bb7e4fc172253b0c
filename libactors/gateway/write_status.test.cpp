#include "gateway/write_status.hpp"

#include <catch2/catch.hpp>

using tether::errc;
using tether::gateway::write_failure_status;
namespace http = boost::beast::http;

TEST_CASE("a refused remote write is 503 only where a retry can succeed, 500 for INTERNAL, "
          "else 4xx",
          "[remote_write]") {
  for (int i = 1; i <= static_cast<int>(errc::subscription_limit); ++i) {
    auto code = static_cast<errc>(i);
    auto status = static_cast<unsigned>(write_failure_status(code));
    INFO(tether::to_string_view(code) << " -> " << status);
    if (tether::retryable(code))
      CHECK(status == 503);
    else if (code == errc::internal)
      CHECK(status == 500); // a fault of the node, as docs/operations.md says
    else
      CHECK((status >= 400 && status < 500));
  }
}

TEST_CASE("remote write statuses of the codes a sender must tell apart", "[remote_write]") {
  CHECK(write_failure_status(errc::unavailable) == http::status::service_unavailable);
  CHECK(write_failure_status(errc::permission_denied) == http::status::forbidden);
  CHECK(write_failure_status(errc::kind_conflict) == http::status::bad_request);
  CHECK(write_failure_status(errc::input_limit) == http::status::bad_request);
  CHECK(write_failure_status(errc::sequence_too_old) == http::status::bad_request);
  CHECK(write_failure_status(errc::too_many_samples) == http::status::bad_request);
  CHECK(write_failure_status(errc::internal) == http::status::internal_server_error);
}
