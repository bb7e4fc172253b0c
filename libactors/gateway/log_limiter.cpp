#include "gateway/log_limiter.hpp"

#include <cstdio>

#include <google/protobuf/stubs/logging.h>

namespace tether::gateway {

namespace {

/// The limiter of libprotobuf's lines; set once by limit_protobuf_logging, before
/// the handler that reads it is installed.
log_limiter* protobuf_limiter = nullptr;

void protobuf_log(google::protobuf::LogLevel level, const char* file, int line,
                  const std::string& message) {
  if (level == google::protobuf::LOGLEVEL_FATAL) {
    std::fprintf(stderr, "libprotobuf FATAL %s:%d: %s\n", file, line, message.c_str());
    return;
  }
  uint64_t suppressed = 0;
  if (!protobuf_limiter->admit(log_limiter::clock::now(), suppressed))
    return;
  if (suppressed > 0)
    std::fprintf(stderr, "tetherd: %llu libprotobuf messages suppressed\n",
                 static_cast<unsigned long long>(suppressed));
  std::fprintf(stderr, "libprotobuf %s:%d: %.200s\n", file, line, message.c_str());
}

} // namespace

void limit_protobuf_logging(uint32_t burst, log_limiter::clock::duration period) {
  static log_limiter instance{burst, period};
  protobuf_limiter = &instance;
  google::protobuf::SetLogHandler(&protobuf_log);
}

} // namespace tether::gateway
