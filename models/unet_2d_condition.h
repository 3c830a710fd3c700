// diffusers UNet2DConditionModel (models/unets/unet_2d_condition.py) for SD 1.x / 2.x / SDXL, built
// entirely from the diffusers config.json. Any config value outside what is implemented throws
// UnsupportedError naming the key and value, so an unusual checkpoint never misbehaves silently.
#pragma once
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>

#include "models/blocks/embeddings.h"
#include "models/blocks/unet_2d_blocks.h"

namespace clipgen {

struct UNet2DConditionConfig {
  int64_t in_channels = 4, out_channels = 4;
  bool center_input_sample = false;
  bool flip_sin_to_cos = true;
  double freq_shift = 0;
  std::vector<std::string> down_block_types = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                               "DownBlock2D"};
  std::string mid_block_type = "UNetMidBlock2DCrossAttn";
  std::vector<std::string> up_block_types = {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                             "CrossAttnUpBlock2D"};
  std::vector<int64_t> block_out_channels = {320, 640, 1280, 1280};
  std::vector<int64_t> layers_per_block = {2};          // one entry or one per down block
  int64_t downsample_padding = 1;
  double mid_block_scale_factor = 1;
  std::string act_fn = "silu";
  int64_t norm_num_groups = 32;
  double norm_eps = 1e-5;
  int64_t cross_attention_dim = 1280;
  std::vector<int64_t> transformer_layers_per_block = {1};  // one entry or one per down block
  std::vector<int64_t> num_attention_heads = {8};       // resolved: num_attention_heads or attention_head_dim
  bool use_linear_projection = false;
  bool upcast_attention = false;
  int64_t time_embedding_dim = 0;                       // 0 → 4·block_out_channels[0]
  int64_t conv_in_kernel = 3, conv_out_kernel = 3;
  std::string addition_embed_type;                      // "" or "text_time"
  int64_t addition_time_embed_dim = 0;
  int64_t projection_class_embeddings_input_dim = 0;

  static UNet2DConditionConfig from_json(const nlohmann::json& j, const std::string& source = "config.json");
  // Per-block values (broadcast from a single entry).
  int64_t heads(size_t block) const;
  int64_t layers(size_t block) const;
  int64_t transformer_layers(size_t block) const;
};

// Receives the outputs of the top-level submodules during forward (diffusers forward-hook names:
// time_proj, time_embedding, add_time_proj, add_embedding, conv_in, down_blocks.i, mid_block,
// up_blocks.i, conv_norm_out, conv_out).
using UNetTrace = std::function<void(const std::string& name, const at::Tensor& value)>;

class UNet2DConditionModelImpl : public torch::nn::Module {
public:
  explicit UNet2DConditionModelImpl(const UNet2DConditionConfig& cfg);

  // sample [B, in, h, w]; timestep 0-d or [B] (integer or float); encoder_hidden_states [B, L, cross_dim];
  // SDXL (addition_embed_type "text_time"): text_embeds [B, P], time_ids [B, 6]. Returns [B, out, h, w].
  at::Tensor forward(const at::Tensor& sample, const at::Tensor& timestep, const at::Tensor& encoder_hidden_states,
                     const at::Tensor& text_embeds = {}, const at::Tensor& time_ids = {},
                     const UNetTrace& trace = nullptr);

  const UNet2DConditionConfig& config() const { return cfg_; }

  blocks::Conv2d conv_in{nullptr}, conv_out{nullptr};
  blocks::Timesteps time_proj{nullptr}, add_time_proj{nullptr};
  blocks::TimestepEmbedding time_embedding{nullptr}, add_embedding{nullptr};
  torch::nn::ModuleList down_blocks{nullptr}, up_blocks{nullptr};
  blocks::UNetMidBlock2DCrossAttn mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};

private:
  UNet2DConditionConfig cfg_;
  std::vector<std::shared_ptr<blocks::DownBlock2DImpl>> down_;
  std::vector<std::shared_ptr<blocks::UpBlock2DImpl>> up_;
};
TORCH_MODULE(UNet2DConditionModel);

// Reads folder/config.json, builds the UNet without initialising its parameters, loads the weights.
UNet2DConditionModel load_unet_2d_condition(const std::filesystem::path& folder);

}  // namespace clipgen
