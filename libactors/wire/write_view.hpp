#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

// A binary write frame read in place: the hot path of the gateway. A 1000-sample
// write decoded by libprotobuf builds a message object per sample and per label and
// copies every string into its arena; this reader only records where the strings are
// in the frame, so the keyer (keyed_batch.hpp) reads them from the frame's bytes.

namespace tether::wire {

/// One label of a sample: both strings point into the frame.
struct label_view {
  std::string_view name;
  std::string_view value;
};

/// One sample of a write; its labels are `write_view::labels[label_begin,
/// label_end)`.
struct sample_view {
  std::string_view name;
  uint32_t label_begin = 0;
  uint32_t label_end = 0;
  int32_t kind = 0; ///< as on the wire (an open proto3 enum)
  int32_t mode = 0;
  double value = 0;
  int64_t timestamp_ms = 0;
};

/// A `tether.v1.Write` whose strings are views into the frame it was read from. The
/// vectors keep their capacity between frames: reading allocates nothing once they
/// have grown to the largest write a session sends.
struct write_view {
  uint64_t sequence = 0;
  std::vector<sample_view> samples;
  std::vector<label_view> labels;
};

/// Reads `bytes`, a binary `tether.v1.ClientFrame`, as a write. Returns true when
/// the frame is a write in the form clients send it (every field known, with its
/// declared wire type, every string valid UTF-8): then `out` holds exactly what
/// libprotobuf would decode. Returns false for anything else — another request, an
/// unknown or repeated-in-odd-ways field, a malformed frame — and the caller decodes
/// the frame with libprotobuf, which gives the answer it always gave. `out` is only
/// meaningful after true.
bool read_write_frame(std::string_view bytes, write_view& out);

} // namespace tether::wire
