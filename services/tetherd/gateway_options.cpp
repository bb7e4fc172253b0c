#include "gateway_options.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/config_option_adder.hpp>
#include <caf/settings.hpp>

namespace tether::gateway {

namespace {

struct option_access : caf::actor_system_config {
  static caf::config_option_set& of(caf::actor_system_config& cfg) {
    return cfg.*(&option_access::custom_options_);
  }
};

std::string bound(const char* name, uint64_t v, uint64_t lo, uint64_t hi) {
  if (v >= lo && v <= hi)
    return {};
  return std::string{"tether."} + name + " = " + std::to_string(v)
         + " is out of bounds [" + std::to_string(lo) + ", " + std::to_string(hi)
         + "]";
}

} // namespace

void configure(caf::actor_system_config& cfg) {
  caf::config_option_adder{option_access::of(cfg), "tether"}
    .add<uint32_t>("max-connections",
                   "open HTTP and WebSocket connections of the node (default 1024)")
    .add<uint32_t>("max-http-body-bytes",
                   "largest HTTP request body, compressed (default 33554432)")
    .add<uint64_t>("max-http-bodies-bytes",
                   "request bodies received and decoded at once (default 67108864)")
    .add<uint32_t>("max-remote-write-bytes",
                   "largest uncompressed remote-write request (default 33554432)")
    .add<uint32_t>("max-send-queue-bytes",
                   "frames waiting for one WebSocket client (default 16777216)")
    .add<uint32_t>("max-dashboard-streams",
                   "dashboard event streams served at once (default 16)")
    .add<uint32_t>("max-metadata-families",
                   "remote-write metadata types remembered (default 65536)")
    .add<std::string>("tokens-file",
                      "file of client tokens with roles and producer-id prefixes, "
                      "re-read on SIGHUP (default: none)");
}

gateway_limits read_gateway_limits(const caf::actor_system_config& cfg) {
  gateway_limits l;
  auto& s = caf::content(cfg);
  l.max_connections = caf::get_or(s, "tether.max-connections", l.max_connections);
  l.max_http_body_bytes = caf::get_or(s, "tether.max-http-body-bytes",
                                      l.max_http_body_bytes);
  l.max_http_bodies_bytes = caf::get_or(s, "tether.max-http-bodies-bytes",
                                        l.max_http_bodies_bytes);
  l.max_remote_write_bytes = caf::get_or(s, "tether.max-remote-write-bytes",
                                         l.max_remote_write_bytes);
  l.max_send_queue_bytes = caf::get_or(s, "tether.max-send-queue-bytes",
                                       l.max_send_queue_bytes);
  l.max_dashboard_streams = caf::get_or(s, "tether.max-dashboard-streams",
                                        l.max_dashboard_streams);
  l.max_metadata_families = caf::get_or(s, "tether.max-metadata-families",
                                        l.max_metadata_families);
  return l;
}

std::string read_tokens_file(const caf::actor_system_config& cfg) {
  return caf::get_or(caf::content(cfg), "tether.tokens-file", std::string{});
}

std::string check(const gateway_limits& l) {
  for (auto err : {bound("max-connections", l.max_connections, 4, 1u << 20),
                   bound("max-http-body-bytes", l.max_http_body_bytes, 1024, 1u << 30),
                   bound("max-http-bodies-bytes", l.max_http_bodies_bytes,
                         l.max_http_body_bytes, uint64_t{1} << 40),
                   bound("max-remote-write-bytes", l.max_remote_write_bytes, 1024,
                         (1u << 31) - 1),
                   bound("max-send-queue-bytes", l.max_send_queue_bytes, 64 << 10,
                         1u << 31),
                   bound("max-dashboard-streams", l.max_dashboard_streams, 1, 1024),
                   bound("max-metadata-families", l.max_metadata_families, 1,
                         1u << 24)})
    if (!err.empty())
      return err;
  return {};
}

} // namespace tether::gateway
