#include "wire/codec.hpp"

#include <chrono>

#include <google/protobuf/util/json_util.h>

#include "keys/utf8.hpp"
#include "wire/tether.pb.h"

namespace tether {

static_assert(static_cast<int>(errc::internal) == v1::INTERNAL);
static_assert(static_cast<int>(errc::kind_conflict) == v1::KIND_CONFLICT);
static_assert(static_cast<int>(errc::malformed_frame) == v1::MALFORMED_FRAME);
static_assert(static_cast<int>(errc::permission_denied) == v1::PERMISSION_DENIED);
static_assert(static_cast<int>(errc::sequence_jump) == v1::SEQUENCE_JUMP);
static_assert(static_cast<int>(errc::subscription_limit) == v1::SUBSCRIPTION_LIMIT);
static_assert(static_cast<int>(kind::histogram) == v1::HISTOGRAM);
static_assert(static_cast<int>(counter_mode::cumulative) == v1::CUMULATIVE);

std::string_view to_string_view(errc code) noexcept {
  if (code == errc::none)
    return "OK";
  auto x = static_cast<int>(code);
  if (!v1::ErrorCode_IsValid(x))
    return "UNKNOWN";
  return v1::ErrorCode_Name(static_cast<v1::ErrorCode>(x));
}

const char* to_string(kind k) noexcept {
  switch (k) {
    case kind::counter:
      return "counter";
    case kind::gauge:
      return "gauge";
    case kind::histogram:
      return "histogram";
    default:
      return "unspecified";
  }
}

namespace wire {

namespace {

/// Longest error message sent; longer ones are cut on a character boundary.
constexpr size_t max_error_message_bytes = 1024;

} // namespace

bool decode(std::string_view bytes, encoding enc, v1::ClientFrame& out,
            std::string& error) {
  out.Clear();
  if (enc == encoding::binary) {
    if (!out.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      error = "binary frame is not a valid tether.v1.ClientFrame";
      return false;
    }
    return true;
  }
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(
    google::protobuf::StringPiece{bytes.data(), bytes.size()}, &out, opts);
  if (!status.ok()) {
    error = "text frame is not a valid tether.v1.ClientFrame in JSON: "
            + std::string{status.message()};
    return false;
  }
  return true;
}

void encode(const v1::ServerFrame& frame, encoding enc, std::string& out) {
  out.clear();
  if (enc == encoding::binary) {
    frame.SerializeToString(&out);
    return;
  }
  google::protobuf::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  opts.always_print_enums_as_ints = false;
  opts.preserve_proto_field_names = false;
  // Printing a well-formed message cannot fail.
  (void) google::protobuf::util::MessageToJsonString(frame, &out, opts);
}

void set_error(v1::ServerFrame& frame, errc code, const std::string& message,
               uint64_t sequence, uint64_t request_id, int32_t index) {
  auto* e = frame.mutable_error();
  e->set_code(static_cast<v1::ErrorCode>(code));
  e->set_message(keys::sanitised(message, max_error_message_bytes));
  e->set_sequence(sequence);
  e->set_request_id(request_id);
  e->set_sample_index(index);
  e->set_retryable(retryable(code));
}

void to_wire(const series_view& view, v1::SeriesState& out) {
  out.set_key(view.key);
  out.set_kind(static_cast<v1::Kind>(view.kind));
  out.set_slice(view.slice);
  out.set_node(view.node);
  out.set_epoch(view.epoch);
  out.set_total(view.total);
  out.set_last(view.last);
  out.set_min(view.min);
  out.set_max(view.max);
  out.set_sum(view.sum);
  out.set_count(view.count);
  out.set_updated_ms(view.updated_ms);
  auto& w = view.window;
  auto* a = out.mutable_window();
  a->set_window_start_ms(w.start_ms);
  a->set_window_end_ms(w.end_ms);
  a->set_count(w.count);
  a->set_sum(w.sum);
  a->set_min(w.min);
  a->set_max(w.max);
  a->set_last(w.last);
  a->set_mean(w.mean);
  a->set_increase(w.increase);
  a->set_total(w.total);
  a->set_rate(w.rate);
  for (auto& [q, v] : w.quantiles) {
    auto* x = a->add_quantiles();
    x->set_q(q);
    x->set_value(v);
  }
}

int64_t now_ms() noexcept {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

} // namespace wire
} // namespace tether
