// transformers' CLIPVisionModelWithProjection (SVD's image encoder), built from a transformers
// `config.json` (model_type clip_vision_model) and registered under transformers' state_dict names:
//   vision_model.embeddings.{class_embedding, patch_embedding.weight (conv, no bias), position_embedding.weight},
//   vision_model.pre_layrnorm.* (sic), vision_model.encoder.layers.<i>.… (models/clip_encoder.h),
//   vision_model.post_layernorm.*, visual_projection.weight (no bias).
// forward: patches + CLS + positions → pre_layrnorm → encoder (no causal mask) → last_hidden_state;
// image_embeds = visual_projection(post_layernorm(last_hidden_state[:, 0])).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "models/blocks/layers.h"
#include "models/clip_encoder.h"

namespace clipgen {

struct CLIPVisionConfig {
  int64_t image_size = 224;
  int64_t patch_size = 32;
  int64_t num_channels = 3;
  int64_t projection_dim = 512;
  CLIPEncoderConfig encoder{768, 3072, 12, 12, CLIPActivation::QuickGELU, 1e-5};

  int64_t num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
  // transformers' CLIPVisionConfig defaults for absent keys; a full CLIPConfig ("vision_config") is accepted.
  static CLIPVisionConfig from_json(const nlohmann::json& cfg, const std::string& source = "config.json");
  static CLIPVisionConfig from_file(const std::filesystem::path& config_json);
};

struct CLIPVisionOutput {
  at::Tensor image_embeds;       // [B, projection_dim]
  at::Tensor last_hidden_state;  // [B, 1 + patches, C], before post_layernorm
  at::Tensor pooler_output;      // [B, C] = post_layernorm(last_hidden_state[:, 0])
  // With output_hidden_states: L+1 tensors: [0] = pre_layrnorm(embeddings), [i] = output of layer i.
  std::vector<at::Tensor> hidden_states;
};

class CLIPVisionEmbeddingsImpl : public torch::nn::Module {
public:
  explicit CLIPVisionEmbeddingsImpl(const CLIPVisionConfig& c);
  // pixel_values [B, 3, S, S] → [B, 1 + (S/p)², C]
  at::Tensor forward(const at::Tensor& pixel_values);

  at::Tensor class_embedding;  // [C]
  blocks::Conv2d patch_embedding{nullptr};
  torch::nn::Embedding position_embedding{nullptr};

private:
  CLIPVisionConfig cfg_;
};
TORCH_MODULE(CLIPVisionEmbeddings);

// CLIPVisionTransformer, registered as `vision_model`.
class CLIPVisionTransformerImpl : public torch::nn::Module {
public:
  explicit CLIPVisionTransformerImpl(const CLIPVisionConfig& c);
  CLIPVisionOutput forward(const at::Tensor& pixel_values, bool output_hidden_states = false);

  CLIPVisionEmbeddings embeddings{nullptr};
  torch::nn::LayerNorm pre_layrnorm{nullptr};
  CLIPEncoder encoder{nullptr};
  torch::nn::LayerNorm post_layernorm{nullptr};
};
TORCH_MODULE(CLIPVisionTransformer);

class CLIPVisionModelWithProjectionImpl : public torch::nn::Module {
public:
  explicit CLIPVisionModelWithProjectionImpl(const CLIPVisionConfig& c);
  // pixel_values [B, 3, image_size, image_size] (CLIP-normalised, e.g. from svd_clip_preprocess).
  CLIPVisionOutput forward(const at::Tensor& pixel_values, bool output_hidden_states = false);
  const CLIPVisionConfig& config() const { return cfg_; }

  CLIPVisionTransformer vision_model{nullptr};
  blocks::Linear visual_projection{nullptr};

private:
  CLIPVisionConfig cfg_;
};
TORCH_MODULE(CLIPVisionModelWithProjection);

// Builds from `<folder>/config.json` and loads the folder's weights by name.
CLIPVisionModelWithProjection load_clip_vision_model_with_projection(const std::filesystem::path& folder);

}  // namespace clipgen
