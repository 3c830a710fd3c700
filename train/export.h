// Writes a trained keyframe model as an ordinary diffusers StableDiffusionPipeline folder:
// model_index.json, text_encoder/ (CLIPTextModel config.json + model.safetensors), tokenizer/ (the CLIP
// BPE files), unet/ and vae/ (config.json + diffusion_pytorch_model.safetensors), scheduler/
// (scheduler_config.json). Weights are stored in float16. The folder is written beside its final name
// and renamed over it, so a reader never sees half a model.
#pragma once
#include <filesystem>
#include <string>

#include "models/io/safetensors.h"

namespace clipgen::train {

struct ExportedComponents {
  std::string text_encoder_config, unet_config, vae_config, scheduler_config;  // JSON text (recipe)
  io::TensorMap text_encoder, unet, vae;                                       // float32 weights by name
  double scaling_factor = 1;
  std::string name;  // the model's name (written into model_index.json as _name_or_path)
};

void export_keyframe_pipeline(const std::filesystem::path& folder, const ExportedComponents& c);

// The CLIP tokenizer files shipped with clipgen (models/data/clip_tokenizer).
std::filesystem::path tokenizer_data_dir();

}  // namespace clipgen::train
