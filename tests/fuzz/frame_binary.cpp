// libFuzzer harness: a binary WebSocket frame (protobuf tether.v1.ClientFrame) as a
// tetherd session decodes, validates and keys it (tests/fuzz/README.md).

#include "frame_target.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tether::fuzz::silence_libraries();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tether::fuzz::run_frame(data, size, tether::wire::encoding::binary);
  return 0;
}
