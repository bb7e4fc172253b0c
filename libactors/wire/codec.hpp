#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tether/errc.hpp"
#include "tether/types.hpp"

namespace tether::v1 {
class ClientFrame;
class ServerFrame;
class SeriesState;
} // namespace tether::v1

namespace tether::wire {

/// How a WebSocket message is encoded: binary frames carry protobuf, text frames
/// carry protobuf's JSON mapping of the same messages.
enum class encoding : uint8_t { binary, json };

/// Decodes one client frame. Returns false and explains why in `error` when the
/// bytes are not a valid `ClientFrame` in the given encoding.
bool decode(std::string_view bytes, encoding enc, v1::ClientFrame& out,
            std::string& error);

/// Encodes one server frame into `out` (replacing its contents). JSON output uses
/// lowerCamelCase names and includes fields that hold default values.
void encode(const v1::ServerFrame& frame, encoding enc, std::string& out);

/// Fills `frame` with an error. `index` is the offending sample or -1.
void set_error(v1::ServerFrame& frame, errc code, const std::string& message,
               uint64_t sequence = 0, uint64_t request_id = 0,
               int32_t index = -1);

/// Copies a series view into its wire form.
void to_wire(const series_view& view, v1::SeriesState& out);

/// Current wall-clock time in Unix milliseconds.
int64_t now_ms() noexcept;

} // namespace tether::wire
