#pragma once

#include <ostream> // Beast's status.hpp (1.81) uses std::ostream without including it

#include <boost/beast/http/status.hpp>

#include "tether/errc.hpp"

namespace tether::gateway {

/// The HTTP status of a remote write the node refused with `code`: `503` only where
/// a retry can succeed (`retryable`), `500` for `INTERNAL`, and a 4xx for everything
/// a retry cannot fix (`403` for `PERMISSION_DENIED`, else `400`). Prometheus resends
/// a request answered 5xx and drops one answered 4xx.
boost::beast::http::status write_failure_status(errc code);

} // namespace tether::gateway
