#include "models/io/diffusers_folder.h"

#include <nlohmann/json.hpp>
#include <cstring>
#include <set>

#include "core/error.h"
#include "core/fs.h"

namespace clipgen::io {
namespace fs = std::filesystem;

nlohmann::json read_json(const fs::path& path) {
  if (!fs::exists(path)) throw ModelLoadError(path.string(), "", "file not found");
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw ModelLoadError(path.string(), "", std::string("invalid JSON: ") + e.what());
  }
}

static bool is_pickle_ext(const fs::path& p) { return is_pickle_extension(p); }

static std::vector<fs::path> shards_from_index(const fs::path& index_file) {
  auto j = read_json(index_file);
  if (!j.contains("weight_map") || !j["weight_map"].is_object())
    throw ModelLoadError(index_file.string(), "", "sharded index has no 'weight_map' object");
  std::set<std::string> names;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it.value().is_string()) throw ModelLoadError(index_file.string(), it.key(), "weight_map value is not a file name");
    auto f = it.value().get<std::string>();
    if (f.find('/') != std::string::npos || f.find("..") != std::string::npos)
      throw ModelLoadError(index_file.string(), it.key(), "shard name '" + f + "' must be a plain file name");
    names.insert(f);
  }
  std::vector<fs::path> out;
  for (const auto& n : names) {
    auto p = index_file.parent_path() / n;
    if (!fs::exists(p)) throw ModelLoadError(index_file.string(), "", "shard '" + n + "' listed in the index is missing");
    out.push_back(p);
  }
  return out;
}

std::vector<fs::path> find_weight_files(const fs::path& path, const std::string& variant) {
  if (fs::is_regular_file(path)) {
    if (is_pickle_ext(path))
      throw ModelLoadError(path.string(), "",
                           "pickle checkpoints are refused (clipgen never unpickles: loading a pickle can run "
                           "arbitrary code). Convert to safetensors once in Python, e.g. "
                           "`pipe.save_pretrained(dir, safe_serialization=True)` or "
                           "`safetensors.torch.save_file(state_dict, 'model.safetensors')`");
    auto fname = path.filename().string();
    if (fname.find(".safetensors.index") != std::string::npos && fname.ends_with(".json")) return shards_from_index(path);
    return {path};
  }
  if (!fs::is_directory(path)) throw ModelLoadError(path.string(), "", "no such file or folder");
  const char* stems[] = {"diffusion_pytorch_model", "model"};
  std::vector<std::string> variants;
  if (!variant.empty()) variants.push_back("." + variant);
  variants.push_back("");
  if (variant.empty()) variants.push_back(".fp16");
  for (const auto& v : variants) {
    for (const char* stem : stems) {
      auto single = path / (std::string(stem) + v + ".safetensors");
      if (fs::exists(single)) return {single};
      // Sharded: diffusers names the variant index "<stem>.safetensors.index.<variant>.json";
      // transformers writes "<stem>.<variant>.safetensors.index.json". Accept both.
      auto index = path / (std::string(stem) + v + ".safetensors.index.json");
      if (fs::exists(index)) return shards_from_index(index);
      if (!v.empty()) {
        auto index2 = path / (std::string(stem) + ".safetensors.index" + v + ".json");
        if (fs::exists(index2)) return shards_from_index(index2);
      }
    }
  }
  for (const auto& e : fs::directory_iterator(path)) {
    if (is_pickle_ext(e.path()))
      throw ModelLoadError(e.path().string(), "",
                           "only a pickle checkpoint was found, and clipgen never unpickles. Convert the folder once "
                           "in Python: load it with diffusers/transformers and call "
                           "save_pretrained(dir, safe_serialization=True)");
  }
  throw ModelLoadError(path.string(), "", "no safetensors weights in folder (expected diffusion_pytorch_model.safetensors or model.safetensors)");
}

fs::path PipelineIndex::component_dir(const std::string& component) const {
  if (!has(component))
    throw ModelLoadError((root / "model_index.json").string(), "", "pipeline has no component '" + component + "'");
  auto d = root / component;
  if (!fs::is_directory(d)) throw ModelLoadError(d.string(), "", "component folder '" + component + "' is missing");
  return d;
}

PipelineIndex read_pipeline_index(const fs::path& root) {
  if (!fs::is_directory(root)) throw ModelLoadError(root.string(), "", "not a folder");
  auto file = root / "model_index.json";
  if (!fs::exists(file)) {
    if (fs::exists(root / "config.json"))
      throw ModelLoadError(root.string(), "",
                           "this is a single model component (config.json, no model_index.json), not a diffusers pipeline "
                           "folder: name the folder that holds model_index.json");
    throw ModelLoadError(root.string(), "", "not a diffusion model folder (no model_index.json)");
  }
  auto j = read_json(file);
  PipelineIndex idx;
  idx.root = root;
  idx.pipeline_class = j.value("_class_name", "");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key().starts_with("_")) continue;
    const auto& v = it.value();
    if (v.is_array() && v.size() == 2 && v[0].is_string() && v[1].is_string())
      idx.components[it.key()] = {v[0].get<std::string>(), v[1].get<std::string>()};
  }
  return idx;
}

WeightSet open_weights(const fs::path& path, const std::string& variant) {
  WeightSet ws;
  ws.paths = find_weight_files(path, variant);
  std::map<std::string, std::string> where;
  for (const auto& p : ws.paths) {
    auto sf = SafetensorsFile::open(p);
    for (const auto& t : sf->tensors()) {
      auto [it, fresh] = where.emplace(t.name, p.filename().string());
      if (!fresh)
        throw ModelLoadError(p.string(), t.name, "tensor is also stored in shard '" + it->second + "'");
      ws.tensors.emplace(t.name, sf->view(t.name));
    }
    ws.files.push_back(std::move(sf));
  }
  ws.tensors = normalize_legacy_names(ws.tensors);
  return ws;
}

TensorMap normalize_legacy_names(const TensorMap& weights) {
  static const std::pair<const char*, const char*> kRenames[] = {
      {".query.", ".to_q."}, {".key.", ".to_k."}, {".value.", ".to_v."}, {".proj_attn.", ".to_out.0."}};
  TensorMap out;
  for (const auto& [name, t] : weights) {
    std::string n = name;
    if (n.find("mid_block.attentions.") != std::string::npos) {
      for (const auto& [from, to] : kRenames) {
        auto pos = n.find(from);
        if (pos != std::string::npos) n.replace(pos, std::strlen(from), to);
      }
    }
    if (out.count(n))
      throw ModelLoadError("", name, "maps to '" + n + "', which the checkpoint also holds under its current name");
    out.emplace(std::move(n), t);
  }
  return out;
}

}  // namespace clipgen::io
