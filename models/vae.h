// diffusers VAE Encoder / Decoder (models/autoencoders/vae.py) used by AutoencoderKL: conv_in, down (or up)
// blocks, UNetMidBlock2D with single-head attention, GroupNorm(eps 1e-6) → SiLU → conv_out.
#pragma once
#include <string>
#include <vector>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>

#include "models/blocks/unet_2d_blocks.h"

namespace clipgen {

struct VAECoderOptions {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  std::vector<int64_t> block_out_channels = {64};
  int64_t layers_per_block = 2;
  int64_t norm_num_groups = 32;
  std::string act_fn = "silu";
  bool double_z = true;               // encoder: 2·out_channels (mean, logvar)
  bool mid_block_add_attention = true;
};

class EncoderImpl : public torch::nn::Module {
public:
  explicit EncoderImpl(const VAECoderOptions& o);
  at::Tensor forward(const at::Tensor& x);  // [B, in, H, W] → [B, 2·out, H/2^(n-1), W/2^(n-1)]

  blocks::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList down_blocks{nullptr};
  blocks::UNetMidBlock2D mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};

private:
  std::vector<blocks::DownEncoderBlock2D> down_;
};
TORCH_MODULE(Encoder);

class DecoderImpl : public torch::nn::Module {
public:
  explicit DecoderImpl(const VAECoderOptions& o);
  at::Tensor forward(const at::Tensor& z);  // [B, in, h, w] → [B, out, h·2^(n-1), w·2^(n-1)]

  blocks::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList up_blocks{nullptr};
  blocks::UNetMidBlock2D mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};

private:
  std::vector<blocks::UpDecoderBlock2D> up_;
};
TORCH_MODULE(Decoder);

}  // namespace clipgen
