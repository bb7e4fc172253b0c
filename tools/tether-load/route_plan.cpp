#include "route_plan.hpp"

#include "tether-load/batch_builder.hpp"
#include "tetherctl/http_client.hpp"

#include <boost/json.hpp>
#include <xxhash.h>

#include <cmath>
#include <unordered_map>

namespace tether::tools::load {

namespace json = boost::json;

namespace {

failure bad(const std::string& what) {
  return failure{"routing table: " + what};
}

const json::object* object_of(const json::value& v) {
  return v.is_object() ? &v.as_object() : nullptr;
}

const json::array* array_at(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v != nullptr && v->is_array() ? &v->as_array() : nullptr;
}

const json::string* string_at(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? &v->as_string() : nullptr;
}

bool uint_at(const json::object& o, std::string_view key, std::uint64_t& out) {
  auto* v = o.if_contains(key);
  if (v == nullptr)
    return false;
  if (v->is_uint64())
    out = v->as_uint64();
  else if (v->is_int64() && v->as_int64() >= 0)
    out = static_cast<std::uint64_t>(v->as_int64());
  else
    return false;
  return true;
}

result<json::object> parse_object(std::string_view text, const char* endpoint) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object())
    return bad(std::string{endpoint} + " did not answer a JSON object");
  return std::move(v.as_object());
}

/// name -> gateway address, from /v1/nodes.
result<std::unordered_map<std::string, host_port>> gateways_of(std::string_view nodes_json) {
  auto doc = parse_object(nodes_json, "/v1/nodes");
  if (!doc)
    return failure{doc.error()};
  auto* nodes = array_at(*doc, "nodes");
  if (nodes == nullptr)
    return bad("/v1/nodes has no \"nodes\" array");
  std::unordered_map<std::string, host_port> out;
  for (auto& n : *nodes) {
    auto* o = object_of(n);
    auto* name = o ? string_at(*o, "name") : nullptr;
    auto* address = o ? string_at(*o, "address") : nullptr;
    if (name == nullptr || address == nullptr)
      return bad("a /v1/nodes entry lacks \"name\" or \"address\"");
    auto hp = parse_host_port(std::string_view{address->data(), address->size()}, 0);
    if (!hp)
      return bad("node " + std::string{name->c_str()} + ": " + hp.error());
    out.emplace(std::string{name->c_str()}, *hp);
  }
  return out;
}

} // namespace

result<route_table> parse_route_table(std::string_view directory_json,
                                      std::string_view nodes_json) {
  auto gateways = gateways_of(nodes_json);
  if (!gateways)
    return failure{gateways.error()};
  auto doc = parse_object(directory_json, "/v1/directory");
  if (!doc)
    return failure{doc.error()};
  route_table t;
  std::uint64_t slice_count = 0;
  auto* slices = array_at(*doc, "slices");
  if (!uint_at(*doc, "version", t.version) || !uint_at(*doc, "slice_count", slice_count)
      || slice_count == 0 || slice_count > (1u << 16) || slices == nullptr)
    return bad("/v1/directory lacks version, slice_count or slices");
  t.slice_count = static_cast<std::uint32_t>(slice_count);
  t.primary.assign(t.slice_count, UINT32_MAX);
  std::unordered_map<std::string, std::uint32_t> index;
  for (auto& s : *slices) {
    auto* o = object_of(s);
    std::uint64_t slice = 0;
    auto* primary = o ? string_at(*o, "primary") : nullptr;
    if (o == nullptr || !uint_at(*o, "slice", slice) || slice >= t.slice_count
        || primary == nullptr)
      return bad("a /v1/directory slice lacks \"slice\" or \"primary\"");
    std::string name{primary->c_str()};
    auto [it, added] = index.emplace(name, static_cast<std::uint32_t>(t.nodes.size()));
    if (added) {
      auto gw = gateways->find(name);
      if (gw == gateways->end())
        return bad("primary " + name + " of slice " + std::to_string(slice)
                   + " is not in /v1/nodes");
      t.nodes.push_back(name);
      t.gateways.push_back(gw->second);
    }
    t.primary[slice] = it->second;
  }
  for (std::uint32_t s = 0; s < t.slice_count; ++s)
    if (t.primary[s] == UINT32_MAX)
      return bad("slice " + std::to_string(s) + " has no primary");
  return t;
}

result<route_table> fetch_route_table(const host_port& server, const std::string& token,
                                      std::chrono::milliseconds timeout,
                                      std::shared_ptr<boost::asio::ssl::context> tls) {
  std::string bodies[2];
  const char* paths[2] = {"/v1/directory", "/v1/nodes"};
  for (int i = 0; i < 2; ++i) {
    auto r = ctl::http_send(server, ctl::http_method::get, paths[i], timeout, {}, token,
                            server.tls ? tls : nullptr);
    if (!r)
      return bad(std::string{paths[i]} + " from " + server.to_string() + ": " + r.error());
    if (r->status != 200)
      return bad(std::string{paths[i]} + " from " + server.to_string() + " answered "
                 + std::to_string(r->status) + ": " + r->body.substr(0, 200));
    bodies[i] = std::move(r->body);
  }
  auto table = parse_route_table(bodies[0], bodies[1]);
  if (table)
    for (auto& g : table->gateways)
      g.tls = server.tls;
  return table;
}

std::uint32_t slice_of(std::string_view canonical_key, std::uint32_t slice_count) {
  return static_cast<std::uint32_t>(XXH3_64bits(canonical_key.data(), canonical_key.size())
                                    % slice_count);
}

std::vector<std::uint32_t> nodes_of_series(const output_map& map, std::uint64_t series,
                                           const route_table& table) {
  std::vector<std::uint32_t> node_of_output(map.count(), 0);
  for (std::uint64_t o = 0; o < map.count(); ++o)
    node_of_output[o] = table.primary[slice_of(map.key(o), table.slice_count)];
  std::vector<std::uint32_t> out(series);
  for (std::uint64_t id = 0; id < series; ++id)
    out[id] = node_of_output[map.output_of(id)];
  return out;
}

// -- plan_routed -----------------------------------------------------------------------

std::vector<routed_connection> plan_routed(const load_options& opts,
                                           const route_table& table) {
  auto map = output_map::of(opts);
  auto node_of = nodes_of_series(map, opts.series, table);
  auto nodes = static_cast<std::uint32_t>(table.nodes.size());
  bool zipf = opts.keys == key_distribution::zipf;
  // Zipf: every producer draws from all ids, so node n's ids serve every producer.
  std::vector<std::vector<std::uint64_t>> by_node(nodes);
  std::vector<double> weight(nodes, 0.0);
  double total = 0;
  if (zipf) {
    for (std::uint64_t id = 0; id < opts.series; ++id) {
      by_node[node_of[id]].push_back(id);
      auto w = std::pow(static_cast<double>(id + 1), -opts.zipf_s);
      weight[node_of[id]] += w;
      total += w;
    }
  }
  std::vector<std::shared_ptr<const id_subset>> zipf_sets(nodes);
  for (std::uint32_t n = 0; n < nodes && zipf; ++n) {
    if (by_node[n].empty())
      continue;
    zipf_sets[n] = id_subset::zipf(std::move(by_node[n]), opts.zipf_s, weight[n] / total);
  }
  std::vector<routed_connection> out;
  for (std::uint32_t c = 0; c < opts.connections; ++c) {
    std::vector<std::vector<std::uint64_t>> mine(zipf ? 0 : nodes);
    std::uint64_t cycle_length = 0;
    if (!zipf) {
      auto cycle = series_for_connection(c, opts.connections, opts.series);
      cycle_length = cycle.count;
      for (std::uint64_t i = 0; i < cycle.count; ++i)
        mine[node_of[cycle.at(i)]].push_back(cycle.at(i));
    }
    for (std::uint32_t n = 0; n < nodes; ++n) {
      std::shared_ptr<const id_subset> set;
      if (zipf) {
        set = zipf_sets[n];
      } else if (!mine[n].empty()) {
        auto share = static_cast<double>(mine[n].size()) / static_cast<double>(cycle_length);
        set = id_subset::cycle(std::move(mine[n]), share);
      }
      if (set)
        out.push_back(routed_connection{c, n, std::move(set)});
    }
  }
  return out;
}

} // namespace tether::tools::load
