// transformers' CLIPTextModel and CLIPTextModelWithProjection (the text encoders of SD 1.x/2.x and both
// SDXL encoders), built from a transformers `config.json` (model_type clip_text_model) and registered
// under transformers' state_dict names:
//   text_model.embeddings.{token_embedding,position_embedding}.weight,
//   text_model.encoder.layers.<i>.…  (models/clip_encoder.h), text_model.final_layer_norm.{weight,bias},
//   text_projection.weight (WithProjection only, no bias).
// Checkpoint keys text_model.embeddings.position_ids (older files) are ignored by the loader.
#pragma once
#include <filesystem>
#include <optional>
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

struct CLIPTextConfig {
  int64_t vocab_size = 49408;
  int64_t max_position_embeddings = 77;
  int64_t projection_dim = 512;
  int64_t pad_token_id = 1, bos_token_id = 49406, eos_token_id = 49407;
  CLIPEncoderConfig encoder;  // hidden_size 512, intermediate 2048, 12 layers, 8 heads, quick_gelu, 1e-5

  // transformers' CLIPTextConfig defaults for absent keys. A full CLIPConfig (with "text_config") is
  // accepted too. Throws UnsupportedError naming `source` and the key.
  static CLIPTextConfig from_json(const nlohmann::json& cfg, const std::string& source = "config.json");
  static CLIPTextConfig from_file(const std::filesystem::path& config_json);
};

struct CLIPTextForwardOptions {
  bool output_hidden_states = false;  // fill CLIPTextOutput::hidden_states
  // Optional [B, L] 0/1 padding mask (diffusers passes one only when the config asks for it).
  std::optional<at::Tensor> attention_mask;
};

struct CLIPTextOutput {
  at::Tensor last_hidden_state;  // [B, L, C], after final_layer_norm
  at::Tensor pooler_output;      // [B, C]: last_hidden_state at the EOS position of each row
  at::Tensor text_embeds;        // [B, projection_dim] = text_projection(pooler_output); WithProjection only
  // With output_hidden_states: L+1 tensors [B, L, C]: [0] embeddings, [i] output of layer i (no final LN).
  std::vector<at::Tensor> hidden_states;
  // Python-style index into hidden_states (-2 = penultimate layer, as SDXL and clip-skip use).
  const at::Tensor& hidden_state(int64_t index) const;
};

class CLIPTextEmbeddingsImpl : public torch::nn::Module {
public:
  explicit CLIPTextEmbeddingsImpl(const CLIPTextConfig& c);
  // input_ids [B, L] int64 → token + position embeddings [B, L, C] (positions 0..L-1).
  at::Tensor forward(const at::Tensor& input_ids);

  torch::nn::Embedding token_embedding{nullptr}, position_embedding{nullptr};
};
TORCH_MODULE(CLIPTextEmbeddings);

// CLIPTextTransformer, registered as `text_model`.
class CLIPTextTransformerImpl : public torch::nn::Module {
public:
  explicit CLIPTextTransformerImpl(const CLIPTextConfig& c);
  CLIPTextOutput forward(const at::Tensor& input_ids, const CLIPTextForwardOptions& opt = {});
  // Positions pooled for each row: argmax(input_ids) when eos_token_id == 2 (transformers' legacy rule,
  // true for the real SD configs: the first 49407), else the first position holding eos_token_id.
  at::Tensor eos_positions(const at::Tensor& input_ids) const;

  CLIPTextEmbeddings embeddings{nullptr};
  CLIPEncoder encoder{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};

private:
  CLIPTextConfig cfg_;
};
TORCH_MODULE(CLIPTextTransformer);

class CLIPTextModelImpl : public torch::nn::Module {
public:
  explicit CLIPTextModelImpl(const CLIPTextConfig& c);
  CLIPTextOutput forward(const at::Tensor& input_ids, const CLIPTextForwardOptions& opt = {});
  const CLIPTextConfig& config() const { return cfg_; }

  CLIPTextTransformer text_model{nullptr};

private:
  CLIPTextConfig cfg_;
};
TORCH_MODULE(CLIPTextModel);

class CLIPTextModelWithProjectionImpl : public torch::nn::Module {
public:
  explicit CLIPTextModelWithProjectionImpl(const CLIPTextConfig& c);
  // As CLIPTextModel, plus text_embeds.
  CLIPTextOutput forward(const at::Tensor& input_ids, const CLIPTextForwardOptions& opt = {});
  const CLIPTextConfig& config() const { return cfg_; }

  CLIPTextTransformer text_model{nullptr};
  blocks::Linear text_projection{nullptr};

private:
  CLIPTextConfig cfg_;
};
TORCH_MODULE(CLIPTextModelWithProjection);

// Builds the model from `<folder>/config.json` and loads its weights (model.safetensors, sharded, or fp16
// variant) by name. Throws ModelLoadError / UnsupportedError.
CLIPTextModel load_clip_text_model(const std::filesystem::path& folder);
CLIPTextModelWithProjection load_clip_text_model_with_projection(const std::filesystem::path& folder);

}  // namespace clipgen
