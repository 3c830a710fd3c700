// The safetensors header parser, free of LibTorch so that the libFuzzer target (fuzz/) can link it
// alone. SafetensorsFile (safetensors.h) uses it for every file it opens.
//
// Format: 8-byte little-endian header length N, N bytes of UTF-8 JSON
// {name: {"dtype": str, "shape": [uint...], "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the data section; offsets are relative to the start of the data section.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace clipgen::io {

// Limits that keep a hostile header from costing unbounded time or memory.
struct SafetensorsLimits {
  uint64_t max_header_bytes = 100ull << 20;  // 100 MiB of JSON (the reference implementation's cap is 100 MB)
  int max_json_depth = 4;                    // header object → entry object → shape/offsets array (3) + slack
  uint64_t max_tensors = 1u << 20;
  int max_rank = 8;
};

struct HeaderEntry {
  std::string name;
  std::string dtype;             // "F32", "F16", "BF16", "I64", ... (validated)
  size_t element_size = 0;       // bytes per element of dtype
  std::vector<int64_t> shape;    // validated: numel fits int64, numel × element_size == end − begin
  uint64_t begin = 0, end = 0;   // byte offsets inside the data section, end <= data_size
};

struct SafetensorsHeader {
  uint64_t header_bytes = 0;     // N
  uint64_t data_offset = 0;      // 8 + N
  uint64_t data_size = 0;        // file size − data_offset
  std::vector<HeaderEntry> tensors;  // sorted by (begin, end); no two non-empty tensors overlap
  std::map<std::string, std::string> metadata;
};

// Size in bytes of one element of a safetensors dtype string, or 0 if unknown.
size_t safetensors_dtype_size(const std::string& dtype);
// The dtype strings clipgen reads, space-separated (for messages).
const char* safetensors_supported_dtypes();

// Validates the header of the file image [data, data + size). Every problem throws ModelLoadError naming
// `file` and, where it applies, the tensor: truncated file, header length past the end or over the cap,
// a pickle/zip checkpoint under a .safetensors name, invalid or too deeply nested JSON, duplicate keys,
// non-object entries, unknown dtypes, bad shapes, offsets outside the data section, byte lengths that
// disagree with dtype × shape, overlapping tensors, non-string metadata.
SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t size, const std::string& file,
                                           const SafetensorsLimits& limits = {});

}  // namespace clipgen::io
