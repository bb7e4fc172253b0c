// libFuzzer harness: a Prometheus remote-write 1.0 body (snappy block format around a
// protobuf WriteRequest) as tetherd's gateway decodes and keys it on its decode pool
// (`decode_remote_write` in libactors/gateway/gateway.cpp): the decoder with the
// gateway's default limits (the uncompressed size the snappy header announces is
// checked before anything is allocated), metadata memory, then the keyer.

#include <deque>
#include <string>

#include "fuzz_support.hpp"
#include "gateway/gateway_options.hpp"
#include "keys/series_key.hpp"
#include "prometheus/metadata_memory.hpp"
#include "prometheus/remote_write.hpp"
#include "wire/keyed_batch.hpp"

namespace {

using namespace tether;
using fuzz::require;

/// The decoder's limits exactly as the gateway derives them from its defaults.
prom::decode_options gateway_decode_options() {
  gateway::gateway_limits lim;
  auto& opts = fuzz::defaults();
  prom::decode_options d;
  d.max_uncompressed_bytes = lim.max_remote_write_bytes;
  d.max_series = opts.limits.max_samples_per_batch;
  d.max_samples = opts.limits.max_samples_per_batch;
  d.max_labels_per_series = keys::max_labels_sent(opts.limits.max_labels_per_sample) + 1;
  return d;
}

/// What write_decoder promises about a request it accepted (remote_write.hpp).
void check_view(const prom::write_request_view& req, const prom::decode_options& d) {
  require(req.series.size() <= d.max_series, "max_series holds");
  size_t samples = 0;
  for (auto& s : req.series) {
    samples += s.samples.size();
    require(!s.name.empty(), "every series has a name");
    require(keys::valid_utf8(s.name), "names are UTF-8", s.name);
    require(s.labels.size() < d.max_labels_per_series, "max_labels_per_series holds");
    for (size_t i = 0; i < s.labels.size(); ++i) {
      auto& l = s.labels[i];
      require(!l.name.empty() && !l.value.empty(), "labels have names and values");
      require(l.name != prom::metric_name_label, "labels exclude __name__");
      require(keys::valid_utf8(l.name) && keys::valid_utf8(l.value),
              "labels are UTF-8");
      if (i > 0)
        require(s.labels[i - 1].name < l.name, "labels are sorted and unique");
    }
  }
  require(samples <= d.max_samples, "max_samples holds");
  for (size_t i = 1; i < req.metadata.size(); ++i)
    require(!(req.metadata[i].family < req.metadata[i - 1].family),
            "metadata is sorted by family");
}

void key_request(const prom::write_request_view& req, const rules::rule_set& rules) {
  auto& opts = fuzz::defaults();
  wire::batch_keyer keyer{opts.limits, opts.slice_count};
  wire::keyed_batch batch;
  size_t stale = 0;
  auto err = keyer.key(1, req, fuzz::now_ms, rules, batch, stale);
  if (err) {
    // Answered as a JSON error body, which must hold valid UTF-8.
    require(keys::valid_utf8(keys::sanitised(err.message)), "errors are UTF-8");
    return;
  }
  for (auto& s : batch.samples) {
    require(size_t{s.key_offset} + s.key_size <= batch.keys.size(),
            "keys lie inside the batch's arena");
    require(s.slice < opts.slice_count, "the slice exists");
  }
}

/// Metadata as Prometheus sends it in a request of its own, before the samples.
const prom::write_request_view& earlier_metadata() {
  static const prom::write_request_view view = [] {
    prom::write_request_view v;
    v.metadata = {{"http_request_duration_seconds", prom::metric_type::histogram, "", ""},
                  {"http_requests", prom::metric_type::counter, "", ""},
                  {"room_temp_celsius", prom::metric_type::gauge, "", "celsius"}};
    return v;
  }();
  return view;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::silence_libraries();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto dopts = gateway_decode_options();
  gateway::gateway_limits lim;
  if (size > lim.max_http_body_bytes)
    return 0; // answered 413 before the body is read
  prom::write_decoder decoder{dopts};
  auto decoded = decoder.decode({reinterpret_cast<const char*>(data), size});
  if (!decoded.ok())
    return 0;
  check_view(*decoded.request, dopts);
  // What earlier requests' metadata taught the node types this one's series. A fresh
  // memory per input keeps inputs reproducible.
  prom::metadata_memory metadata{lim.max_metadata_families};
  metadata.remember(earlier_metadata());
  const prom::write_request_view* request = decoded.request;
  prom::write_request_view completed;
  std::deque<std::string> names;
  if (metadata.complete(*request, completed, names))
    request = &completed;
  key_request(*request, fuzz::no_rules());
  key_request(*request, fuzz::example_rules());
  metadata.remember(*decoded.request);
  return 0;
}
