// The diffusers / transformers folder layout: model_index.json at a pipeline root, one folder per
// component with config.json and weights (diffusion_pytorch_model.safetensors, model.safetensors,
// sharded *.safetensors.index.json, *.fp16.safetensors variants). Pickle weights are refused.
#pragma once
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "models/io/safetensors.h"

namespace clipgen::io {

// Reads and parses a JSON file; errors name the file.
nlohmann::json read_json(const std::filesystem::path& path);

// The safetensors file(s) holding a component's weights. `path` may be a .safetensors file or a
// component folder. Prefers the full-precision file, then the "fp16" variant (or the variant named).
// Throws ModelLoadError for pickle-only folders (with conversion advice) or no weights.
std::vector<std::filesystem::path> find_weight_files(const std::filesystem::path& path,
                                                     const std::string& variant = "");

// A pipeline folder with model_index.json: component name → (library, class name).
struct PipelineIndex {
  std::filesystem::path root;
  std::string pipeline_class;
  std::map<std::string, std::pair<std::string, std::string>> components;
  bool has(const std::string& component) const { return components.count(component) > 0; }
  std::filesystem::path component_dir(const std::string& component) const;  // throws if absent
};
// Reads root/model_index.json. Errors name what `root` is instead: not a folder, a single component
// folder (config.json), or no model at all.
PipelineIndex read_pipeline_index(const std::filesystem::path& root);

// Every tensor of a component (all shards), as zero-copy views, legacy names normalized. A tensor stored
// in two shards is an error. `files` keeps the mappings alive (the views also do).
struct WeightSet {
  std::vector<std::filesystem::path> paths;
  std::vector<std::shared_ptr<SafetensorsFile>> files;
  TensorMap tensors;
};
WeightSet open_weights(const std::filesystem::path& folder_or_file, const std::string& variant = "");

// Renames keys written by early diffusers (VAE attention query/key/value/proj_attn) to current names.
TensorMap normalize_legacy_names(const TensorMap& weights);

}  // namespace clipgen::io
