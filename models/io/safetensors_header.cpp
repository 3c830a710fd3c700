#include "models/io/safetensors_header.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace clipgen::io {
namespace {

struct DTypeSize {
  const char* name;
  size_t size;
};
constexpr DTypeSize kDTypes[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
                                 {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};

// Thrown from the JSON parser callback to stop parsing at once (depth bomb, duplicate key).
struct HeaderAbort {
  std::string tensor, message;
};

std::string printable(const std::string& s) {
  // Tensor names come from the file: keep messages readable and bounded.
  std::string out;
  for (char c : s.substr(0, 200)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  if (s.size() > 200) out += "...";
  return out;
}

bool is_nonneg_integer(const nlohmann::json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  for (const auto& e : kDTypes)
    if (dtype == e.name) return e.size;
  return 0;
}

const char* safetensors_supported_dtypes() { return "F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL"; }

SafetensorsHeader parse_safetensors_header(const uint8_t* base, size_t size, const std::string& file,
                                           const SafetensorsLimits& limits) {
  static const char* kPickleAdvice =
      "clipgen never unpickles (loading a pickle can run arbitrary code). Convert it once in Python: "
      "`safetensors.torch.save_file(torch.load(path, weights_only=True)[\"state_dict\"], \"model.safetensors\")` "
      "or, for a diffusers/transformers folder, `save_pretrained(dir, safe_serialization=True)`";
  // Pickle / torch zip content under a safetensors name. Checked only when the bytes cannot be a
  // safetensors file (a valid header length may well start with 0x80 0x02).
  auto refuse_pickle = [&] {
    if (size >= 4 && std::memcmp(base, "PK\x03\x04", 4) == 0)
      throw ModelLoadError(file, "", std::string("this is a PyTorch zip checkpoint (torch.save), not safetensors; ") + kPickleAdvice);
    if (size >= 2 && base[0] == 0x80 && base[1] >= 2 && base[1] <= 5)
      throw ModelLoadError(file, "", std::string("this is a Python pickle, not safetensors; ") + kPickleAdvice);
  };
  if (size < 8) refuse_pickle();
  if (size < 8)
    throw ModelLoadError(file, "", "truncated file: " + std::to_string(size) +
                                       " bytes, a safetensors file starts with an 8-byte header length");
  SafetensorsHeader h;
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | base[i];
  if (n > size - 8 || (n >= 1 && base[8] != '{')) refuse_pickle();
  if (n > size - 8)
    throw ModelLoadError(file, "", "header length " + std::to_string(n) + " runs past the end of the file (" +
                                       std::to_string(size) + " bytes): truncated or not a safetensors file");
  if (n > limits.max_header_bytes)
    throw ModelLoadError(file, "", "header length " + std::to_string(n) + " exceeds the limit of " +
                                       std::to_string(limits.max_header_bytes) + " bytes");
  if (n < 2 || base[8] != '{')
    throw ModelLoadError(file, "", "header does not start with a JSON object: not a safetensors file");
  h.header_bytes = n;
  h.data_offset = 8 + n;
  h.data_size = size - h.data_offset;

  const char* hb = reinterpret_cast<const char*>(base + 8);
  // Keys seen per open object (duplicate detection: nlohmann would silently keep the last one).
  std::vector<std::set<std::string>> keys;
  nlohmann::json::parser_callback_t cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (ev == E::object_start || ev == E::array_start) {
      if (depth >= limits.max_json_depth)
        throw HeaderAbort{"", "header JSON nests deeper than " + std::to_string(limits.max_json_depth) + " levels"};
      if (ev == E::object_start) keys.emplace_back();
    } else if (ev == E::object_end) {
      if (!keys.empty()) keys.pop_back();
    } else if (ev == E::key && !keys.empty()) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!keys.back().insert(k).second) throw HeaderAbort{k, "duplicate key in the header"};
      if (keys.size() == 1 && keys.back().size() > limits.max_tensors + 1)
        throw HeaderAbort{"", "header lists more than " + std::to_string(limits.max_tensors) + " tensors"};
    }
    return true;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(hb, hb + n, cb, /*allow_exceptions=*/true);
  } catch (const HeaderAbort& a) {
    throw ModelLoadError(file, printable(a.tensor), a.message);
  } catch (const nlohmann::json::exception& e) {
    throw ModelLoadError(file, "", std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) throw ModelLoadError(file, "", "header is not a JSON object");

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const std::string pname = printable(name);
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw ModelLoadError(file, name, "__metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          throw ModelLoadError(file, name, "__metadata__ value of '" + printable(m.key()) + "' is not a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) throw ModelLoadError(file, pname, "header entry is not an object");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) throw ModelLoadError(file, pname, "missing or non-string 'dtype'");
    if (sh == v.end() || !sh->is_array()) throw ModelLoadError(file, pname, "missing or non-array 'shape'");
    if (off == v.end() || !off->is_array() || off->size() != 2)
      throw ModelLoadError(file, pname, "'data_offsets' must be an array [begin, end]");
    HeaderEntry e;
    e.name = name;
    e.dtype = dt->get<std::string>();
    e.element_size = safetensors_dtype_size(e.dtype);
    if (e.element_size == 0)
      throw ModelLoadError(file, pname, "unknown dtype '" + printable(e.dtype) + "' (supported: " +
                                            safetensors_supported_dtypes() + ")");
    if (static_cast<int64_t>(sh->size()) > limits.max_rank)
      throw ModelLoadError(file, pname, "rank " + std::to_string(sh->size()) + " exceeds " + std::to_string(limits.max_rank));
    // numel × element size, overflow-safe: every factor < 2^63, the running product saturates.
    constexpr unsigned __int128 kSat = static_cast<unsigned __int128>(1) << 100;
    unsigned __int128 numel = 1, numel_nonzero = 1;
    for (const auto& d : *sh) {
      if (!is_nonneg_integer(d)) throw ModelLoadError(file, pname, "shape entries must be non-negative integers");
      uint64_t dim = d.get<uint64_t>();
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw ModelLoadError(file, pname, "shape dimension " + std::to_string(dim) + " is too large");
      e.shape.push_back(static_cast<int64_t>(dim));
      numel = std::min(numel * dim, kSat);
      if (dim) numel_nonzero = std::min(numel_nonzero * dim, kSat);
    }
    if (numel_nonzero > static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max()))
      throw ModelLoadError(file, pname, "shape has more elements than a tensor can hold");
    const unsigned __int128 bytes = numel * e.element_size;
    for (const auto& o : *off)
      if (!is_nonneg_integer(o)) throw ModelLoadError(file, pname, "data_offsets must be non-negative integers");
    e.begin = (*off)[0].get<uint64_t>();
    e.end = (*off)[1].get<uint64_t>();
    if (e.begin > e.end)
      throw ModelLoadError(file, pname, "data_offsets begin " + std::to_string(e.begin) + " > end " + std::to_string(e.end));
    if (e.end > h.data_size)
      throw ModelLoadError(file, pname, "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                                            ") run past the end of the data section (" + std::to_string(h.data_size) +
                                            " bytes): truncated file?");
    if (static_cast<unsigned __int128>(e.end - e.begin) != bytes) {
      std::string expect = bytes >= kSat ? std::string("more than 2^100") : std::to_string(static_cast<uint64_t>(bytes));
      throw ModelLoadError(file, pname, "byte length " + std::to_string(e.end - e.begin) + " does not match dtype " +
                                            e.dtype + " × shape (" + expect + " bytes)");
    }
    h.tensors.push_back(std::move(e));
  }
  std::sort(h.tensors.begin(), h.tensors.end(), [](const HeaderEntry& a, const HeaderEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Overlaps between non-empty tensors (empty ones occupy no bytes).
  const HeaderEntry* prev = nullptr;
  for (const auto& t : h.tensors) {
    if (t.end == t.begin) continue;
    if (prev && t.begin < prev->end)
      throw ModelLoadError(file, printable(t.name), "data [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                                                        ") overlaps tensor '" + printable(prev->name) + "' [" +
                                                        std::to_string(prev->begin) + ", " + std::to_string(prev->end) + ")");
    prev = &t;
  }
  return h;
}

}  // namespace clipgen::io
