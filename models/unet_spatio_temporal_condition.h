// diffusers UNetSpatioTemporalConditionModel (models/unets/unet_spatio_temporal_condition.py): the Stable Video
// Diffusion (SVD, SVD-XT) denoiser, built from its diffusers config.json. Config values outside what is
// implemented throw UnsupportedError naming the key.
//
// forward(sample [B, F, C, H, W], timestep, encoder_hidden_states [B, L, D], added_time_ids [B, N]):
//   emb = time_embedding(time_proj(t)) + add_embedding(add_time_proj(added_time_ids.flatten()).reshape(B, −1)),
//   repeated per frame (repeat_interleave), as are encoder_hidden_states; frames are flattened into the batch
//   ([B·F, C, H, W]) for conv_in → down blocks → mid block → up blocks → GroupNorm(32, eps 1e-5) → SiLU →
//   conv_out; image_only_indicator is all zeros. Returns [B, F, out_channels, H, W].
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>

#include "models/blocks/embeddings.h"
#include "models/blocks/spatio_temporal_blocks.h"

namespace clipgen {

struct UNetSpatioTemporalConditionConfig {
  int64_t in_channels = 8, out_channels = 4;
  std::vector<std::string> down_block_types = {"CrossAttnDownBlockSpatioTemporal", "CrossAttnDownBlockSpatioTemporal",
                                               "CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"};
  std::vector<std::string> up_block_types = {"UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal",
                                             "CrossAttnUpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"};
  std::vector<int64_t> block_out_channels = {320, 640, 1280, 1280};
  int64_t addition_time_embed_dim = 256;
  int64_t projection_class_embeddings_input_dim = 768;
  // Per-block lists (a single config integer is broadcast to every block).
  std::vector<int64_t> layers_per_block = {2, 2, 2, 2};
  std::vector<int64_t> cross_attention_dim = {1024, 1024, 1024, 1024};
  std::vector<int64_t> transformer_layers_per_block = {1, 1, 1, 1};
  std::vector<int64_t> num_attention_heads = {5, 10, 20, 20};
  int64_t num_frames = 25;  // the model's training length (informational; any frame count runs)
  int64_t sample_size = 0;  // informational

  // Reads a diffusers config.json. Unsupported values or unknown keys throw UnsupportedError naming the
  // key and `source`.
  static UNetSpatioTemporalConditionConfig from_json(const nlohmann::json& j,
                                                     const std::string& source = "config.json");
};

// Receives the outputs of the top-level submodules during forward, under the diffusers forward-hook names
// (time_proj, time_embedding, add_time_proj, add_embedding, conv_in, down_blocks.i, mid_block, up_blocks.i,
// conv_norm_out, conv_out), in the flattened [B·F, …] layout.
using UNetSpatioTemporalTrace = std::function<void(const std::string& name, const at::Tensor& value)>;

class UNetSpatioTemporalConditionModelImpl : public torch::nn::Module {
public:
  explicit UNetSpatioTemporalConditionModelImpl(const UNetSpatioTemporalConditionConfig& cfg);

  // sample [B, F, in_channels, H, W] (H, W divisible by 2^(levels−1)); timestep 0-d, [1] or [B] (float
  // c_noise values for SVD's EDM schedule; integers allowed); encoder_hidden_states [B, L, cross_dim];
  // added_time_ids [B, N] with N·addition_time_embed_dim == projection_class_embeddings_input_dim
  // (SVD: [fps − 1, motion_bucket_id, noise_aug_strength]). Returns [B, F, out_channels, H, W].
  at::Tensor forward(const at::Tensor& sample, const at::Tensor& timestep, const at::Tensor& encoder_hidden_states,
                     const at::Tensor& added_time_ids, const UNetSpatioTemporalTrace& trace = nullptr);
  at::Tensor forward(const at::Tensor& sample, double timestep, const at::Tensor& encoder_hidden_states,
                     const at::Tensor& added_time_ids);

  const UNetSpatioTemporalConditionConfig& config() const { return cfg_; }

  blocks::Conv2d conv_in{nullptr}, conv_out{nullptr};
  blocks::Timesteps time_proj{nullptr}, add_time_proj{nullptr};
  blocks::TimestepEmbedding time_embedding{nullptr}, add_embedding{nullptr};
  torch::nn::ModuleList down_blocks{nullptr}, up_blocks{nullptr};
  blocks::UNetMidBlockSpatioTemporal mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};

private:
  UNetSpatioTemporalConditionConfig cfg_;
  std::vector<std::shared_ptr<blocks::DownBlockSpatioTemporalImpl>> down_;
  std::vector<std::shared_ptr<blocks::UpBlockSpatioTemporalImpl>> up_;
};
TORCH_MODULE(UNetSpatioTemporalConditionModel);

// Reads folder/config.json, builds the model without initialising it and loads its weights
// (diffusion_pytorch_model[.fp16].safetensors, sharded or not). Errors name the folder and tensor.
UNetSpatioTemporalConditionModel load_unet_spatio_temporal_condition(const std::filesystem::path& folder);

}  // namespace clipgen
