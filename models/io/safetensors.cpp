#include "models/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "core/fs.h"

namespace clipgen::io {
namespace {

struct DTypeEntry {
  const char* name;
  size_t size;
  c10::ScalarType type;
};

constexpr DTypeEntry kDTypes[] = {
    {"F64", 8, c10::kDouble}, {"F32", 4, c10::kFloat},  {"F16", 2, c10::kHalf},   {"BF16", 2, c10::kBFloat16},
    {"I64", 8, c10::kLong},   {"I32", 4, c10::kInt},    {"I16", 2, c10::kShort},  {"I8", 1, c10::kChar},
    {"U8", 1, c10::kByte},    {"BOOL", 1, c10::kBool},
};

const DTypeEntry* find_dtype(const std::string& s) {
  for (const auto& e : kDTypes)
    if (s == e.name) return &e;
  return nullptr;
}

const char* dtype_name(c10::ScalarType t) {
  for (const auto& e : kDTypes)
    if (e.type == t) return e.name;
  return nullptr;
}

}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  const auto* e = find_dtype(dtype);
  return e ? e->size : 0;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path,
                                                       const SafetensorsLimits& limits) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  const std::string file = path.string();
  auto ext = path.extension().string();
  if (ext == ".bin" || ext == ".ckpt" || ext == ".pt" || ext == ".pth" || ext == ".pkl")
    throw ModelLoadError(file, "",
                         "pickle checkpoints are refused (clipgen never unpickles: a pickle can run code). "
                         "Convert it once with Python: `from safetensors.torch import save_file; "
                         "save_file(torch.load(path, weights_only=True)['state_dict'], 'model.safetensors')`, "
                         "or save the diffusers pipeline with save_pretrained(..., safe_serialization=True)");
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ModelLoadError(file, "", std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw ModelLoadError(file, "", "not a regular file");
  }
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    // Private, writable copy-on-write mapping: views handed to LibTorch may be written without touching the file.
    void* m = ::mmap(nullptr, f->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      ::close(fd);
      throw ModelLoadError(file, "", std::string("mmap failed: ") + std::strerror(errno));
    }
    f->map_ = m;
    f->map_size_ = f->size_;
    f->base_ = static_cast<const uint8_t*>(m);
  }
  ::close(fd);
  f->parse(limits);
  return f;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::from_bytes(std::string bytes, const std::string& name,
                                                             const SafetensorsLimits& limits) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = name;
  f->owned_ = std::move(bytes);
  f->base_ = reinterpret_cast<const uint8_t*>(f->owned_.data());
  f->size_ = f->owned_.size();
  f->parse(limits);
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

void SafetensorsFile::parse(const SafetensorsLimits& limits) {
  const std::string file = path_.string();
  if (size_ < 8) throw ModelLoadError(file, "", "truncated file: " + std::to_string(size_) + " bytes, a safetensors file starts with an 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | base_[i];
  if (n > size_ - 8)
    throw ModelLoadError(file, "", "header length " + std::to_string(n) + " runs past the end of the file (" +
                                       std::to_string(size_) + " bytes): truncated or not a safetensors file");
  if (n > limits.max_header_bytes)
    throw ModelLoadError(file, "", "header length " + std::to_string(n) + " exceeds the limit of " +
                                       std::to_string(limits.max_header_bytes) + " bytes");
  if (n < 2) throw ModelLoadError(file, "", "header too short to be JSON");
  data_offset_ = 8 + n;
  data_size_ = size_ - data_offset_;

  const char* hb = reinterpret_cast<const char*>(base_ + 8);
  int depth_exceeded = 0;
  nlohmann::json::parser_callback_t cb = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > limits.max_json_depth) depth_exceeded = 1;
    return depth_exceeded == 0;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(hb, hb + n, cb, /*allow_exceptions=*/true);
  } catch (const nlohmann::json::exception& e) {
    throw ModelLoadError(file, "", std::string("header is not valid JSON: ") + e.what());
  }
  if (depth_exceeded)
    throw ModelLoadError(file, "", "header JSON nests deeper than " + std::to_string(limits.max_json_depth) + " levels");
  if (!header.is_object()) throw ModelLoadError(file, "", "header is not a JSON object");
  if (header.size() > limits.max_tensors + 1)
    throw ModelLoadError(file, "", "header lists " + std::to_string(header.size()) + " entries, over the limit");

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw ModelLoadError(file, name, "__metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          throw ModelLoadError(file, name, "__metadata__ value of '" + m.key() + "' is not a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) throw ModelLoadError(file, name, "entry is not an object");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) throw ModelLoadError(file, name, "missing or non-string 'dtype'");
    if (sh == v.end() || !sh->is_array()) throw ModelLoadError(file, name, "missing or non-array 'shape'");
    if (off == v.end() || !off->is_array() || off->size() != 2)
      throw ModelLoadError(file, name, "'data_offsets' must be an array [begin, end]");
    TensorInfo info;
    info.name = name;
    info.dtype = dt->get<std::string>();
    const auto* de = find_dtype(info.dtype);
    if (!de) throw ModelLoadError(file, name, "unknown dtype '" + info.dtype + "' (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
    info.scalar_type = de->type;
    if (static_cast<int>(sh->size()) > limits.max_rank)
      throw ModelLoadError(file, name, "rank " + std::to_string(sh->size()) + " exceeds " + std::to_string(limits.max_rank));
    // numel * size with overflow checks
    unsigned __int128 bytes = de->size;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
        throw ModelLoadError(file, name, "shape entries must be non-negative integers");
      uint64_t dim = d.get<uint64_t>();
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw ModelLoadError(file, name, "shape dimension too large");
      info.shape.push_back(static_cast<int64_t>(dim));
      bytes *= dim;
      if (bytes > static_cast<unsigned __int128>(size_)) bytes = static_cast<unsigned __int128>(size_) + 1;
    }
    for (const auto& o : *off)
      if (!o.is_number_unsigned() && !(o.is_number_integer() && o.get<int64_t>() >= 0))
        throw ModelLoadError(file, name, "data_offsets must be non-negative integers");
    info.begin = (*off)[0].get<uint64_t>();
    info.end = (*off)[1].get<uint64_t>();
    if (info.begin > info.end) throw ModelLoadError(file, name, "data_offsets begin > end");
    if (info.end > data_size_)
      throw ModelLoadError(file, name, "data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) +
                                           ") run past the data section (" + std::to_string(data_size_) +
                                           " bytes): truncated file?");
    if (static_cast<unsigned __int128>(info.end - info.begin) != bytes)
      throw ModelLoadError(file, name, "byte length " + std::to_string(info.end - info.begin) + " does not match dtype " +
                                           info.dtype + " × shape (" + std::to_string(static_cast<uint64_t>(bytes)) + " bytes)");
    tensors_.push_back(std::move(info));
  }
  std::sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < tensors_.size(); ++i) {
    const auto& a = tensors_[i - 1];
    const auto& b = tensors_[i];
    if (b.begin < a.end && b.end > b.begin && a.end > a.begin)
      throw ModelLoadError(file, b.name, "data overlaps tensor '" + a.name + "'");
  }
  for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

at::Tensor SafetensorsFile::view(const std::string& name) const {
  const auto* info = find(name);
  if (!info) throw ModelLoadError(path_.string(), name, "tensor not found in file");
  auto opts = torch::TensorOptions().dtype(info->scalar_type).device(torch::kCPU);
  if (info->numel() == 0) return torch::empty(info->shape, opts);
  auto* ptr = const_cast<uint8_t*>(base_ + data_offset_ + info->begin);
  const size_t elem = safetensors_dtype_size(info->dtype);
  if (reinterpret_cast<uintptr_t>(ptr) % elem != 0) {
    // Unaligned data: copy (rare; the format recommends 8-byte alignment).
    auto t = torch::empty(info->shape, opts);
    std::memcpy(t.data_ptr(), ptr, info->end - info->begin);
    return t;
  }
  auto self = shared_from_this();
  return torch::from_blob(ptr, info->shape, [self](void*) {}, opts);
}

at::Tensor SafetensorsFile::load(const std::string& name, std::optional<c10::ScalarType> dtype, c10::Device device) const {
  auto v = view(name);
  auto target = dtype.value_or(v.scalar_type());
  if (target == v.scalar_type() && device.is_cpu()) return v;
  return v.to(device, target);
}

TensorMap SafetensorsFile::load_all(std::optional<c10::ScalarType> dtype) const {
  TensorMap out;
  for (const auto& t : tensors_) out.emplace(t.name, load(t.name, dtype));
  return out;
}

TensorMap load_safetensors(const std::filesystem::path& path, std::optional<c10::ScalarType> dtype) {
  return SafetensorsFile::open(path)->load_all(dtype);
}

void save_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t0] : tensors) {
    auto t = t0.detach().to(torch::kCPU).contiguous();
    const char* dn = dtype_name(t.scalar_type());
    if (!dn) throw Error("save_safetensors: unsupported dtype for tensor '" + name + "'");
    uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", dn}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    data.push_back(t);
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');
  std::string out;
  out.reserve(8 + h.size() + offset);
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += h;
  for (const auto& t : data) out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  atomic_write_file(path, out);
}

}  // namespace clipgen::io
