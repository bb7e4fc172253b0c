#pragma once

#include <cstdint>

namespace tether::prom {

template <class T>
class array_view;

enum class errc : uint8_t;
enum class family_type : uint8_t;
enum class metric_type : uint8_t;

class write_decoder;
class write_encoder;

struct bucket;
struct decode_options;
struct decode_result;
struct encode_result;
struct error;
struct family;
struct family_metadata;
struct http_header;
struct label;
struct point;
struct quantile_value;
struct sample;
struct series_view;
struct write_request_view;

namespace remote {
class WriteRequest;
} // namespace remote

} // namespace tether::prom
