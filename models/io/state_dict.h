// Binding weights to modules by name. Modules register their children under the exact
// diffusers/transformers parameter names, so a checkpoint's state_dict loads with no renaming table.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "models/io/safetensors.h"

namespace clipgen::io {

struct LoadOptions {
  // Checkpoint keys to ignore silently (exact names or suffix matches such as "position_ids").
  std::vector<std::string> ignore_suffixes = {"embeddings.position_ids"};
  // When true, parameters missing from the checkpoint are an error (default).
  bool strict = true;
};

// The module's parameters and persistent buffers under their dotted names.
TensorMap module_state(const torch::nn::Module& module);

// Copies `weights` into `module` (converting dtype). Reports missing, unexpected and shape-mismatched
// keys — the first few of each and the counts — in one ModelLoadError naming `source`.
void load_state_dict(torch::nn::Module& module, const TensorMap& weights, const std::string& source,
                     const LoadOptions& options = {});

// Loads a diffusers/transformers model folder's weights (config.json beside
// diffusion_pytorch_model.safetensors / model.safetensors, sharded *.safetensors.index.json, or an
// fp16 variant) into `module`.
void load_weights_into(torch::nn::Module& module, const std::filesystem::path& folder_or_file,
                       const LoadOptions& options = {});

}  // namespace clipgen::io
