// diffusers' spatio-temporal UNet blocks (models/unets/unet_3d_blocks.py) for Stable Video Diffusion:
//   UNet:    DownBlockSpatioTemporal, CrossAttnDownBlockSpatioTemporal, UNetMidBlockSpatioTemporal,
//            UpBlockSpatioTemporal, CrossAttnUpBlockSpatioTemporal
//   VAE:     MidBlockTemporalDecoder, UpBlockTemporalDecoder (AutoencoderKLTemporalDecoder's decoder)
// Children are registered under diffusers' names (resnets.N, attentions.N, downsamplers.0, upsamplers.0).
// All blocks work on frames flattened into the batch, [B·F, C, H, W], with image_only_indicator [B, F].
#pragma once
#include <vector>

#include <torch/nn/modules/container/modulelist.h>

#include "models/blocks/sampling.h"
#include "models/blocks/spatio_temporal.h"
#include "models/blocks/unet_2d_blocks.h"  // SkipList

namespace clipgen::blocks {

struct SpatioTemporalBlockOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t prev_output_channel = 0;  // up blocks
  int64_t temb_channels = 0;
  int64_t num_layers = 1;
  int64_t transformer_layers = 1;   // per attention (diffusers' transformer_layers_per_block; one value per block)
  int64_t num_attention_heads = 1;
  int64_t cross_attention_dim = 1280;
  bool add_downsample = true;
  bool add_upsample = true;
  // GroupNorm eps of the resnets. < 0 → what the diffusers class uses when built by
  // UNetSpatioTemporalConditionModel: DownBlockSpatioTemporal and the mid block 1e-5 (hard-coded),
  // CrossAttnDownBlockSpatioTemporal 1e-6 (hard-coded), both up blocks 1e-6 (their default: get_up_block
  // does not pass the model's resnet_eps=1e-5 on).
  double resnet_eps = -1;
};

// DownBlockSpatioTemporal (with_attention = false) / CrossAttnDownBlockSpatioTemporal (true):
// (SpatioTemporalResBlock [→ TransformerSpatioTemporalModel]) × num_layers, then Downsample2D ("op").
class DownBlockSpatioTemporalImpl : public torch::nn::Module {
public:
  explicit DownBlockSpatioTemporalImpl(const SpatioTemporalBlockOptions& o, bool with_attention = false);
  // Appends the skip outputs (after each layer and the downsampler) to `skips`; returns the block output.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb, const at::Tensor& context,
                     const at::Tensor& image_only_indicator, SkipList& skips);

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, downsamplers{nullptr};

protected:
  std::vector<SpatioTemporalResBlock> resnets_;
  std::vector<TransformerSpatioTemporalModel> attentions_;
  Downsample2D down_{nullptr};
};
TORCH_MODULE(DownBlockSpatioTemporal);

class CrossAttnDownBlockSpatioTemporalImpl : public DownBlockSpatioTemporalImpl {
public:
  explicit CrossAttnDownBlockSpatioTemporalImpl(const SpatioTemporalBlockOptions& o)
      : DownBlockSpatioTemporalImpl(o, true) {}
};
TORCH_MODULE(CrossAttnDownBlockSpatioTemporal);

// UpBlockSpatioTemporal / CrossAttnUpBlockSpatioTemporal: per layer, pop a skip (last in, first out), concat
// [x, skip] on channels, SpatioTemporalResBlock [→ TransformerSpatioTemporalModel]; then Upsample2D (×2).
class UpBlockSpatioTemporalImpl : public torch::nn::Module {
public:
  explicit UpBlockSpatioTemporalImpl(const SpatioTemporalBlockOptions& o, bool with_attention = false);
  at::Tensor forward(const at::Tensor& x, SkipList& skips, const at::Tensor& temb, const at::Tensor& context,
                     const at::Tensor& image_only_indicator);
  int64_t num_layers() const { return static_cast<int64_t>(resnets_.size()); }

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, upsamplers{nullptr};

protected:
  std::vector<SpatioTemporalResBlock> resnets_;
  std::vector<TransformerSpatioTemporalModel> attentions_;
  Upsample2D up_{nullptr};
};
TORCH_MODULE(UpBlockSpatioTemporal);

class CrossAttnUpBlockSpatioTemporalImpl : public UpBlockSpatioTemporalImpl {
public:
  explicit CrossAttnUpBlockSpatioTemporalImpl(const SpatioTemporalBlockOptions& o)
      : UpBlockSpatioTemporalImpl(o, true) {}
};
TORCH_MODULE(CrossAttnUpBlockSpatioTemporal);

// UNetMidBlockSpatioTemporal: resnets.0, then (attentions.i, resnets.i+1) for each layer; in_channels throughout.
class UNetMidBlockSpatioTemporalImpl : public torch::nn::Module {
public:
  explicit UNetMidBlockSpatioTemporalImpl(const SpatioTemporalBlockOptions& o);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb, const at::Tensor& context,
                     const at::Tensor& image_only_indicator);

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr};

private:
  std::vector<SpatioTemporalResBlock> resnets_;
  std::vector<TransformerSpatioTemporalModel> attentions_;
};
TORCH_MODULE(UNetMidBlockSpatioTemporal);

// MidBlockTemporalDecoder: num_layers SpatioTemporalResBlocks (no time embedding, eps 1e-6 / temporal 1e-5,
// "learned" mix with switch_spatial_to_temporal_mix) and ONE single-head Attention (GroupNorm, biased
// projections, residual). Forward: resnets.0, then (attentions.i, resnets.i+1) — with num_layers = 1 the
// attention exists in the checkpoint but is never applied, exactly as in diffusers.
class MidBlockTemporalDecoderImpl : public torch::nn::Module {
public:
  MidBlockTemporalDecoderImpl(int64_t in_channels, int64_t out_channels, int64_t attention_head_dim,
                              int64_t num_layers);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& image_only_indicator);

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr};

private:
  std::vector<SpatioTemporalResBlock> resnets_;
  std::vector<Attention> attentions_;
};
TORCH_MODULE(MidBlockTemporalDecoder);

// UpBlockTemporalDecoder: num_layers SpatioTemporalResBlocks (as in the mid block), then Upsample2D.
class UpBlockTemporalDecoderImpl : public torch::nn::Module {
public:
  UpBlockTemporalDecoderImpl(int64_t in_channels, int64_t out_channels, int64_t num_layers, bool add_upsample);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& image_only_indicator);

  torch::nn::ModuleList resnets{nullptr}, upsamplers{nullptr};

private:
  std::vector<SpatioTemporalResBlock> resnets_;
  Upsample2D up_{nullptr};
};
TORCH_MODULE(UpBlockTemporalDecoder);

}  // namespace clipgen::blocks
