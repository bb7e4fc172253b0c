#pragma once

#include <cstdint>

#include "events/log_limiter.hpp"

namespace tether::gateway {

using events::log_limiter;

/// Routes libprotobuf's log lines (it logs, for example, every string field that
/// is not UTF-8 in a frame a client sent) through a log_limiter to standard error:
/// at most `burst` lines per `period` (`tether.client-log-burst`,
/// `tether.client-log-period-ms`). Call once, before serving; later calls change
/// nothing.
void limit_protobuf_logging(uint32_t burst, log_limiter::clock::duration period);

} // namespace tether::gateway
