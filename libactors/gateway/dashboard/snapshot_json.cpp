#include "gateway/dashboard/snapshot_json.hpp"

#include <boost/json.hpp>

namespace tether::gateway::dashboard {

namespace json = boost::json;

namespace {

std::string frame(std::string_view name, const json::value& data) {
  std::string out = "event: ";
  out += name;
  out += "\ndata: ";
  out += json::serialize(data);
  out += "\n\n";
  return out;
}

const peer_state* peer_of(const cluster_view& v, const std::string& name) {
  for (auto& p : v.peers)
    if (p.name == name)
      return &p;
  return nullptr;
}

/// A node's row: directory state, what this node's supervisor knows of it, its
/// slice counts and latest rates.
json::object node_row(const cluster_view& v, const std::string& name,
                      const std::string& state, const rate_history& rates) {
  json::object o{{"name", name}, {"state", state}};
  auto* p = peer_of(v, name);
  o["connected"] = p != nullptr && p->connected;
  o["self"] = p != nullptr && p->self;
  o["suspect"] = p != nullptr && p->suspect;
  o["last_heard_ms"] = p ? json::value(p->last_heard_ms) : json::value(nullptr);
  o["incarnation"] = p ? json::value(p->incarnation) : json::value(nullptr);
  o["directory_member"] = p ? json::value(p->directory_id) : json::value(nullptr);
  o["series"] = p ? json::value(p->series) : json::value(nullptr);
  o["samples_applied"] = p ? json::value(p->samples_applied) : json::value(nullptr);
  o["windows_closed"] = p ? json::value(p->windows_closed) : json::value(nullptr);
  o["address"] = p ? p->gateway : std::string{};
  uint32_t primaries = 0;
  uint32_t followers = 0;
  for (auto& s : v.table.slices) {
    auto is = [&](int32_t m) {
      return m >= 0 && static_cast<size_t>(m) < v.table.members.size()
             && v.table.members[static_cast<size_t>(m)].name == name;
    };
    primaries += is(s.primary) ? 1 : 0;
    for (auto f : s.followers)
      followers += is(f) ? 1 : 0;
  }
  o["primary_slices"] = primaries;
  o["follower_slices"] = followers;
  // The latest rates of a node this one still hears from (a lost node's are stale).
  rates.for_each([&](const std::string& n, auto& points) {
    if (n == name && !points.empty() && p != nullptr && p->connected) {
      o["rate_ms"] = points.back().unix_ms;
      o["ingest_per_s"] = points.back().ingest;
      o["windows_per_s"] = points.back().windows;
    }
  });
  return o;
}

json::value moves_json(const cluster_view& v) {
  json::object o;
  if (!v.moves) {
    o["leader"] = nullptr;
    o["error"] = v.moves_error;
    return o;
  }
  o["leader"] = v.moves->leader;
  json::array moving;
  for (auto& m : v.moves->moving)
    moving.emplace_back(json::array{m.slice, m.from, m.to});
  o["moving"] = std::move(moving);
  o["done"] = v.moves->done;
  o["failed"] = v.moves->failed;
  json::array series;
  for (auto n : v.moves->slice_series)
    series.emplace_back(n);
  o["slice_series"] = std::move(series);
  return o;
}

} // namespace

std::string table_event(const assignment_table& t) {
  json::array members;
  for (auto& m : t.members)
    members.emplace_back(json::object{{"name", m.name},
                                      {"address", m.address},
                                      {"up", m.up},
                                      {"drained", m.drained}});
  json::array slices;
  for (auto& s : t.slices) {
    json::array followers;
    for (auto f : s.followers)
      followers.emplace_back(f);
    slices.emplace_back(json::array{s.primary, s.epoch, std::move(followers)});
  }
  return frame("table", json::object{{"version", t.version},
                                     {"replication_factor", t.replication_factor},
                                     {"members", std::move(members)},
                                     {"slices", std::move(slices)}});
}

std::string nodes_event(const cluster_view& v, const rate_history& rates) {
  json::array nodes;
  for (auto& m : v.table.members) {
    auto row = node_row(v, m.name, m.up ? "up" : m.drained ? "drained" : "down", rates);
    row["address"] = m.address;
    nodes.emplace_back(std::move(row));
  }
  for (auto& p : v.peers) {
    bool listed = false;
    for (auto& m : v.table.members)
      listed = listed || m.name == p.name;
    if (!listed)
      nodes.emplace_back(node_row(v, p.name, "joining", rates));
  }
  return frame("nodes", json::object{{"self", v.self},
                                     {"time_ms", v.unix_ms},
                                     {"clustered", v.clustered},
                                     {"version", v.table.version},
                                     {"nodes", std::move(nodes)},
                                     {"directory", moves_json(v)}});
}

std::string history_event(const rate_history& rates) {
  json::object nodes;
  rates.for_each([&](const std::string& name, auto& points) {
    json::array xs;
    for (auto& p : points)
      xs.emplace_back(json::array{p.unix_ms, p.ingest, p.windows});
    nodes[name] = std::move(xs);
  });
  return frame("history", json::object{{"nodes", std::move(nodes)}});
}

std::string events_event(const std::vector<cluster_event>& xs) {
  json::array out;
  for (auto& e : xs)
    out.emplace_back(json::object{{"seq", e.seq},
                                  {"unix_ms", e.unix_ms},
                                  {"kind", e.kind},
                                  {"text", e.text}});
  return frame("events", json::object{{"events", std::move(out)}});
}

} // namespace tether::gateway::dashboard
