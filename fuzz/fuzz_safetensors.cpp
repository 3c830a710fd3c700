// libFuzzer target for the safetensors header parser (the part of the reader that sees hostile bytes).
// Built only with -DCLIPGEN_FUZZ=ON and clang (see fuzz/CMakeLists.txt, docs/weights.md). Any exception
// other than ModelLoadError, any sanitizer report or any out-of-range tensor range is a finding.
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "models/io/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto h = clipgen::io::parse_safetensors_header(data, size, "fuzz.safetensors");
    // Every accepted tensor must lie inside the input: touch its first and last byte (ASan checks).
    volatile uint8_t acc = 0;
    for (const auto& t : h.tensors) {
      if (h.data_offset + t.end > size) std::abort();
      if (t.end > t.begin) acc = acc ^ data[h.data_offset + t.begin] ^ data[h.data_offset + t.end - 1];
    }
    (void)acc;
  } catch (const clipgen::ModelLoadError&) {
  }
  return 0;
}
