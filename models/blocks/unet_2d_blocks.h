// diffusers UNet building blocks (models/unets/unet_2d_blocks.py): the SD/SDXL UNet's down, mid and up
// blocks, and the VAE encoder/decoder blocks. Children are registered under diffusers' names
// (resnets.N, attentions.N, downsamplers.0, upsamplers.0).
#pragma once
#include <optional>
#include <vector>

#include <torch/nn/modules/container/modulelist.h>

#include "models/blocks/attention.h"
#include "models/blocks/resnet.h"
#include "models/blocks/sampling.h"
#include "models/blocks/transformer_2d.h"

namespace clipgen::blocks {

// Arguments shared by all blocks (diffusers get_down_block / get_up_block / mid-block arguments).
struct UNetBlockOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t prev_output_channel = 0;  // up blocks: channels coming from the previous (deeper) block
  int64_t temb_channels = 0;        // 0 → resnets without time_emb_proj (VAE)
  int64_t num_layers = 1;
  double resnet_eps = 1e-6;
  std::string resnet_act_fn = "swish";
  int64_t resnet_groups = 32;
  std::string resnet_time_scale_shift = "default";
  double output_scale_factor = 1.0;
  bool add_downsample = true;
  bool add_upsample = true;
  int64_t downsample_padding = 1;
  // Cross-attention blocks
  std::vector<int64_t> transformer_layers_per_block = {1};  // one entry, or one per layer
  int64_t num_attention_heads = 1;
  int64_t cross_attention_dim = 1280;
  bool use_linear_projection = false;
  bool only_cross_attention = false;
  bool upcast_attention = false;
  // UNetMidBlock2D (VAE)
  bool add_attention = true;
  int64_t attention_head_dim = 0;   // 0 → in_channels (one head)
};

// The skip connections a down block hands to the up path (outputs after each resnet and downsampler).
using SkipList = std::vector<at::Tensor>;

class DownBlock2DImpl : public torch::nn::Module {
public:
  explicit DownBlock2DImpl(const UNetBlockOptions& o, bool with_attention = false);
  // Appends this block's skip outputs to `skips`; returns the block output.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb, const at::Tensor& context, SkipList& skips);

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, downsamplers{nullptr};

protected:
  std::vector<ResnetBlock2D> resnets_;
  std::vector<Transformer2DModel> attentions_;
  Downsample2D down_{nullptr};
};
TORCH_MODULE(DownBlock2D);

// DownBlock2D with a Transformer2DModel after each resnet.
class CrossAttnDownBlock2DImpl : public DownBlock2DImpl {
public:
  explicit CrossAttnDownBlock2DImpl(const UNetBlockOptions& o) : DownBlock2DImpl(o, true) {}
};
TORCH_MODULE(CrossAttnDownBlock2D);

class UpBlock2DImpl : public torch::nn::Module {
public:
  explicit UpBlock2DImpl(const UNetBlockOptions& o, bool with_attention = false);
  // Pops num_layers skips from the back of `skips` (last in, first out), concatenating [x, skip] on channels.
  at::Tensor forward(const at::Tensor& x, SkipList& skips, const at::Tensor& temb, const at::Tensor& context,
                     const std::optional<std::vector<int64_t>>& upsample_size = std::nullopt);

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, upsamplers{nullptr};

protected:
  std::vector<ResnetBlock2D> resnets_;
  std::vector<Transformer2DModel> attentions_;
  Upsample2D up_{nullptr};
};
TORCH_MODULE(UpBlock2D);

class CrossAttnUpBlock2DImpl : public UpBlock2DImpl {
public:
  explicit CrossAttnUpBlock2DImpl(const UNetBlockOptions& o) : UpBlock2DImpl(o, true) {}
};
TORCH_MODULE(CrossAttnUpBlock2D);

// resnets.0, then (attentions.i, resnets.i+1) for each layer. Uses in_channels throughout.
class UNetMidBlock2DCrossAttnImpl : public torch::nn::Module {
public:
  explicit UNetMidBlock2DCrossAttnImpl(const UNetBlockOptions& o);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb, const at::Tensor& context);

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr};

private:
  std::vector<ResnetBlock2D> resnets_;
  std::vector<Transformer2DModel> attentions_;
};
TORCH_MODULE(UNetMidBlock2DCrossAttn);

// VAE mid block: resnets.0, attentions.0 (single-head Attention with GroupNorm and residual), resnets.1.
class UNetMidBlock2DImpl : public torch::nn::Module {
public:
  explicit UNetMidBlock2DImpl(const UNetBlockOptions& o);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb = {});

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr};

private:
  std::vector<ResnetBlock2D> resnets_;
  std::vector<Attention> attentions_;
};
TORCH_MODULE(UNetMidBlock2D);

// VAE encoder block: resnets (no time embedding), then Downsample2D (name "op", child "conv").
class DownEncoderBlock2DImpl : public torch::nn::Module {
public:
  explicit DownEncoderBlock2DImpl(const UNetBlockOptions& o);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::ModuleList resnets{nullptr}, downsamplers{nullptr};

private:
  std::vector<ResnetBlock2D> resnets_;
  Downsample2D down_{nullptr};
};
TORCH_MODULE(DownEncoderBlock2D);

// VAE decoder block: resnets (temb optional), then Upsample2D.
class UpDecoderBlock2DImpl : public torch::nn::Module {
public:
  explicit UpDecoderBlock2DImpl(const UNetBlockOptions& o);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb = {});

  torch::nn::ModuleList resnets{nullptr}, upsamplers{nullptr};

private:
  std::vector<ResnetBlock2D> resnets_;
  Upsample2D up_{nullptr};
};
TORCH_MODULE(UpDecoderBlock2D);

// Helpers for other block families (e.g. the spatio-temporal UNet): the ResnetBlock2D and
// Transformer2DModel options a block builds from UNetBlockOptions.
ResnetBlock2DOptions resnet_options(const UNetBlockOptions& o, int64_t in_channels, int64_t out_channels);
Transformer2DModelOptions transformer_options(const UNetBlockOptions& o, int64_t channels, int64_t layer_index);

}  // namespace clipgen::blocks
