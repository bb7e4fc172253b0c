#pragma once

#include "common/host_port.hpp"
#include "common/result.hpp"
#include "tether-load/id_subset.hpp"
#include "tether-load/load_options.hpp"
#include "tether-load/output_map.hpp"

#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tether::tools::load {

/// Where each slice's primary is, as `GET /v1/directory` and `GET /v1/nodes` tell a
/// routed producer (docs/protocol.md section 6.2).
struct route_table {
  std::uint64_t version = 0;             ///< directory table version
  std::uint32_t slice_count = 0;
  std::vector<std::string> nodes;        ///< node names; a node's index is its number here
  std::vector<host_port> gateways;       ///< gateway address of node `i`
  std::vector<std::uint32_t> primary;    ///< node index of slice `s`'s primary
};

/// The table from the bodies of `/v1/directory` and `/v1/nodes`. Fails when a body is
/// not the documented JSON, a slice is missing, or a primary has no gateway address.
result<route_table> parse_route_table(std::string_view directory_json,
                                      std::string_view nodes_json);

/// Reads both endpoints from `server` (with `token` as Bearer when not empty, over TLS
/// with `tls` when `server.tls`) within `timeout` each. The gateways speak TLS when
/// `server` does.
result<route_table> fetch_route_table(const host_port& server, const std::string& token,
                                      std::chrono::milliseconds timeout,
                                      std::shared_ptr<boost::asio::ssl::context> tls);

/// `xxh3_64(key, seed 0) mod slice_count` (docs/protocol.md section 12.3).
std::uint32_t slice_of(std::string_view canonical_key, std::uint32_t slice_count);

/// The node index (into `table.nodes`) of the primary of every series id
/// `0 .. series-1`: the slice of the id's output key under `map`.
std::vector<std::uint32_t> nodes_of_series(const output_map& map, std::uint64_t series,
                                           const route_table& table);

/// What one routed connection does: the node it writes to first and its ids.
struct routed_connection {
  std::uint32_t producer = 0;  ///< the `--connections` index it belongs to
  std::uint32_t node = 0;      ///< index into the table's nodes
  std::shared_ptr<const id_subset> ids;
};

/// The connections of a routed run: for every `--connections` index `c` and node `n`
/// with series, one connection writing the ids whose primary is `n` (with `--keys
/// uniform` only those of `c`'s cycle). In index order `c * nodes + n`, skipping empty
/// ones. Each subset's `share` is its part of the producer's samples.
std::vector<routed_connection> plan_routed(const load_options& opts, const route_table& table);

} // namespace tether::tools::load
