#include "models/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "core/fs.h"

namespace clipgen::io {
namespace {

struct DTypeEntry {
  const char* name;
  c10::ScalarType type;
};

constexpr DTypeEntry kDTypes[] = {
    {"F64", c10::kDouble}, {"F32", c10::kFloat}, {"F16", c10::kHalf}, {"BF16", c10::kBFloat16},
    {"I64", c10::kLong},   {"I32", c10::kInt},   {"I16", c10::kShort}, {"I8", c10::kChar},
    {"U8", c10::kByte},    {"BOOL", c10::kBool},
};

const char* dtype_name(c10::ScalarType t) {
  for (const auto& e : kDTypes)
    if (e.type == t) return e.name;
  return nullptr;
}

}  // namespace

c10::ScalarType scalar_type_of(const std::string& dtype) {
  for (const auto& e : kDTypes)
    if (dtype == e.name) return e.type;
  throw UnsupportedError("safetensors dtype '" + dtype + "' is not supported");
}

bool is_pickle_extension(const std::filesystem::path& path) {
  auto e = path.extension().string();
  for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e == ".bin" || e == ".ckpt" || e == ".pt" || e == ".pth" || e == ".pkl";
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;  // validated at open (no overflow)
  return n;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path,
                                                       const SafetensorsLimits& limits) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  const std::string file = path.string();
  if (is_pickle_extension(path))
    throw ModelLoadError(file, "",
                         "pickle checkpoints are refused (clipgen never unpickles: loading a pickle can run "
                         "arbitrary code). Convert it once in Python: `safetensors.torch.save_file("
                         "torch.load(path, weights_only=True)[\"state_dict\"], \"model.safetensors\")`, or save a "
                         "diffusers/transformers model with save_pretrained(dir, safe_serialization=True)");
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
      int err = errno;
      ::close(fd);
      throw ModelLoadError(file, "", std::string("mmap failed: ") + std::strerror(err));
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
  static const uint8_t kEmpty[1] = {0};
  auto h = parse_safetensors_header(base_ ? base_ : kEmpty, size_, path_.string(), limits);
  data_offset_ = h.data_offset;
  data_size_ = h.data_size;
  metadata_ = std::move(h.metadata);
  tensors_.reserve(h.tensors.size());
  for (auto& e : h.tensors) {
    TensorInfo info;
    info.name = std::move(e.name);
    info.dtype = std::move(e.dtype);
    info.scalar_type = scalar_type_of(info.dtype);
    info.shape = std::move(e.shape);
    info.begin = e.begin;
    info.end = e.end;
    tensors_.push_back(std::move(info));
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
  const size_t elem = c10::elementSize(info->scalar_type);
  if (reinterpret_cast<uintptr_t>(ptr) % elem != 0) {
    // Unaligned data: copy (the format recommends 8-byte alignment; the reference writers pad the header).
    auto t = torch::empty(info->shape, opts);
    std::memcpy(t.data_ptr(), ptr, info->nbytes());
    return t;
  }
  auto self = shared_from_this();
  return torch::from_blob(ptr, info->shape, [self](void*) {}, opts);
}

at::Tensor SafetensorsFile::load(const std::string& name, std::optional<c10::ScalarType> dtype, c10::Device device) const {
  auto v = view(name);
  auto target = dtype.value_or(v.scalar_type());
  if (target == v.scalar_type() && device.is_cpu()) return v;
  return v.to(device, target);  // one conversion/copy, straight from the mapping
}

TensorMap SafetensorsFile::load_all(std::optional<c10::ScalarType> dtype, c10::Device device) const {
  TensorMap out;
  for (const auto& t : tensors_) {
    std::optional<c10::ScalarType> d = c10::isFloatingType(t.scalar_type) ? dtype : std::nullopt;
    out.emplace(t.name, load(t.name, d, device));
  }
  return out;
}

TensorMap load_safetensors(const std::filesystem::path& path, std::optional<c10::ScalarType> dtype) {
  return SafetensorsFile::open(path)->load_all(dtype);
}

void save_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") throw Error("save_safetensors: '__metadata__' cannot be a tensor name");
    if (!t.defined()) throw Error("save_safetensors: tensor '" + name + "' is undefined");
    const char* dn = dtype_name(t.scalar_type());
    if (!dn) throw Error("save_safetensors: unsupported dtype for tensor '" + name + "'");
    uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", dn}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');
  auto tmp = temp_path_for(path);
  try {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error("cannot write " + tmp.string());
    uint64_t n = h.size();
    char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    f.write(len, 8);
    f.write(h.data(), static_cast<std::streamsize>(h.size()));
    for (const auto& [name, t0] : tensors) {  // same (sorted) order as the header offsets
      auto t = t0.detach().to(torch::kCPU).contiguous();
      f.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
    }
    f.flush();
    if (!f) throw Error("write failed: " + tmp.string());
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
  commit_temp(tmp, path);
}

}  // namespace clipgen::io
