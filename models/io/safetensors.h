// Safetensors reader and writer (https://github.com/huggingface/safetensors format):
// 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
// optional "__metadata__" (string → string), then the packed little-endian tensor data.
//
// The file is memory-mapped; view() exposes a tensor without copying (CPU, the file's dtype),
// load() converts to the requested dtype/device. Every structural problem of a hostile or damaged file
// is a ModelLoadError naming the file and, where it applies, the tensor (see safetensors_header.h for
// the checks). Pickle checkpoints (.bin .ckpt .pt .pth .pkl, or pickle/zip content) are refused.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "models/io/safetensors_header.h"

namespace clipgen::io {

using TensorMap = std::map<std::string, at::Tensor>;

struct TensorInfo {
  std::string name;
  std::string dtype;           // as written in the file: "F32", "F16", "BF16", "I64", ...
  c10::ScalarType scalar_type;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets inside the data section
  int64_t numel() const;        // validated at open: fits int64
  uint64_t nbytes() const { return end - begin; }
};

// The LibTorch scalar type of a safetensors dtype string; throws UnsupportedError for unknown ones.
c10::ScalarType scalar_type_of(const std::string& dtype);
// True for file extensions clipgen refuses to read because they hold pickles (.bin .ckpt .pt .pth .pkl).
bool is_pickle_extension(const std::filesystem::path& path);

class SafetensorsFile : public std::enable_shared_from_this<SafetensorsFile> {
public:
  // Opens, maps and validates the whole header. Throws ModelLoadError.
  static std::shared_ptr<SafetensorsFile> open(const std::filesystem::path& path,
                                               const SafetensorsLimits& limits = {});
  // Validates an in-memory buffer (used by tests); `name` is used in errors.
  static std::shared_ptr<SafetensorsFile> from_bytes(std::string bytes, const std::string& name,
                                                     const SafetensorsLimits& limits = {});
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in data-offset order
  const TensorInfo* find(const std::string& name) const;
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  uint64_t data_bytes() const { return data_size_; }
  uint64_t file_bytes() const { return size_; }

  // Zero-copy CPU tensor in the stored dtype, aliasing the mapping (the tensor keeps the file mapped).
  // The mapping is private (copy-on-write): writing to a view never changes the file. Data that is not
  // aligned to its element size (allowed by the format, never written by the reference writers) is
  // copied instead. Throws ModelLoadError if `name` is absent.
  at::Tensor view(const std::string& name) const;
  // The tensor converted to `dtype` (default: stored dtype) on `device`. When nothing needs converting
  // and device is the CPU, this is the zero-copy view; otherwise one fresh tensor (no intermediate copy).
  at::Tensor load(const std::string& name, std::optional<c10::ScalarType> dtype = std::nullopt,
                  c10::Device device = c10::kCPU) const;
  // Every tensor; `dtype` converts floating-point tensors only (integer/bool tensors such as
  // position_ids keep their type).
  TensorMap load_all(std::optional<c10::ScalarType> dtype = std::nullopt, c10::Device device = c10::kCPU) const;

private:
  SafetensorsFile() = default;
  void parse(const SafetensorsLimits& limits);

  std::filesystem::path path_;
  std::string owned_;         // from_bytes storage
  void* map_ = nullptr;       // mmap base
  size_t map_size_ = 0;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint64_t data_offset_ = 0, data_size_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` (contiguous CPU copies are made one tensor at a time) with optional metadata,
// atomically (temporary name in the same folder, then rename). The header is padded to 8 bytes.
void save_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Convenience: open and load every tensor (floating-point ones converted to dtype when given).
TensorMap load_safetensors(const std::filesystem::path& path, std::optional<c10::ScalarType> dtype = std::nullopt);

}  // namespace clipgen::io
