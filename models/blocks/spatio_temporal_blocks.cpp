#include "models/blocks/spatio_temporal_blocks.h"

#include <torch/torch.h>

#include "core/error.h"

namespace clipgen::blocks {

namespace {
SpatioTemporalResBlock unet_resnet(int64_t in, int64_t out, int64_t temb, double eps) {
  SpatioTemporalResBlockOptions r;
  r.in_channels = in;
  r.out_channels = out;
  r.temb_channels = temb;
  r.eps = eps;  // temporal eps = eps; merge "learned_with_images", factor 0.5
  return SpatioTemporalResBlock(r);
}

TransformerSpatioTemporalModel unet_transformer(const SpatioTemporalBlockOptions& o, int64_t channels) {
  if (o.num_attention_heads <= 0 || channels % o.num_attention_heads != 0)
    throw UnsupportedError("unsupported num_attention_heads=" + std::to_string(o.num_attention_heads) + " for a " +
                           std::to_string(channels) + "-channel spatio-temporal block (must divide the channels)");
  TransformerSpatioTemporalModelOptions t;
  t.num_attention_heads = o.num_attention_heads;
  t.attention_head_dim = channels / o.num_attention_heads;
  t.in_channels = channels;
  t.num_layers = o.transformer_layers;
  t.cross_attention_dim = o.cross_attention_dim;
  return TransformerSpatioTemporalModel(t);
}

SpatioTemporalResBlock decoder_resnet(int64_t in, int64_t out) {
  SpatioTemporalResBlockOptions r;
  r.in_channels = in;
  r.out_channels = out;
  r.temb_channels = 0;
  r.eps = 1e-6;
  r.temporal_eps = 1e-5;
  r.merge_factor = 0.0;
  r.merge_strategy = "learned";
  r.switch_spatial_to_temporal_mix = true;
  return SpatioTemporalResBlock(r);
}
}  // namespace

// ---------------------------------------------------------------------------------------------------------
DownBlockSpatioTemporalImpl::DownBlockSpatioTemporalImpl(const SpatioTemporalBlockOptions& o, bool with_attention) {
  const double eps = o.resnet_eps >= 0 ? o.resnet_eps : (with_attention ? 1e-6 : 1e-5);
  resnets = register_module("resnets", torch::nn::ModuleList());
  if (with_attention) attentions = register_module("attentions", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers; ++i) {
    resnets_.push_back(unet_resnet(i == 0 ? o.in_channels : o.out_channels, o.out_channels, o.temb_channels, eps));
    resnets->push_back(resnets_.back());
    if (with_attention) {
      attentions_.push_back(unet_transformer(o, o.out_channels));
      attentions->push_back(attentions_.back());
    }
  }
  if (o.add_downsample) {
    downsamplers = register_module("downsamplers", torch::nn::ModuleList());
    down_ = Downsample2D(Downsample2DOptions{o.out_channels, true, o.out_channels, 1});
    downsamplers->push_back(down_);
  }
}

at::Tensor DownBlockSpatioTemporalImpl::forward(const at::Tensor& x, const at::Tensor& temb, const at::Tensor& context,
                                                const at::Tensor& image_only_indicator, SkipList& skips) {
  auto h = x;
  for (size_t i = 0; i < resnets_.size(); ++i) {
    h = resnets_[i](h, temb, image_only_indicator);
    if (!attentions_.empty()) h = attentions_[i](h, context, image_only_indicator);
    skips.push_back(h);
  }
  if (down_) {
    h = down_(h);
    skips.push_back(h);
  }
  return h;
}

// ---------------------------------------------------------------------------------------------------------
UpBlockSpatioTemporalImpl::UpBlockSpatioTemporalImpl(const SpatioTemporalBlockOptions& o, bool with_attention) {
  const double eps = o.resnet_eps >= 0 ? o.resnet_eps : 1e-6;
  resnets = register_module("resnets", torch::nn::ModuleList());
  if (with_attention) attentions = register_module("attentions", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers; ++i) {
    const int64_t skip = i == o.num_layers - 1 ? o.in_channels : o.out_channels;
    const int64_t in = i == 0 ? o.prev_output_channel : o.out_channels;
    resnets_.push_back(unet_resnet(in + skip, o.out_channels, o.temb_channels, eps));
    resnets->push_back(resnets_.back());
    if (with_attention) {
      attentions_.push_back(unet_transformer(o, o.out_channels));
      attentions->push_back(attentions_.back());
    }
  }
  if (o.add_upsample) {
    upsamplers = register_module("upsamplers", torch::nn::ModuleList());
    up_ = Upsample2D(Upsample2DOptions{o.out_channels, true, o.out_channels});
    upsamplers->push_back(up_);
  }
}

at::Tensor UpBlockSpatioTemporalImpl::forward(const at::Tensor& x, SkipList& skips, const at::Tensor& temb,
                                              const at::Tensor& context, const at::Tensor& image_only_indicator) {
  auto h = x;
  for (size_t i = 0; i < resnets_.size(); ++i) {
    TORCH_CHECK(!skips.empty(), "UpBlockSpatioTemporal: ran out of skip connections");
    h = at::cat({h, skips.back()}, 1);  // [B·F, C + C_skip, H, W]
    skips.pop_back();
    h = resnets_[i](h, temb, image_only_indicator);
    if (!attentions_.empty()) h = attentions_[i](h, context, image_only_indicator);
  }
  if (up_) h = up_(h);
  return h;
}

// ---------------------------------------------------------------------------------------------------------
UNetMidBlockSpatioTemporalImpl::UNetMidBlockSpatioTemporalImpl(const SpatioTemporalBlockOptions& o) {
  const double eps = o.resnet_eps >= 0 ? o.resnet_eps : 1e-5;
  const int64_t c = o.in_channels;
  resnets = register_module("resnets", torch::nn::ModuleList());
  attentions = register_module("attentions", torch::nn::ModuleList());
  resnets_.push_back(unet_resnet(c, c, o.temb_channels, eps));
  resnets->push_back(resnets_.back());
  for (int64_t i = 0; i < o.num_layers; ++i) {
    attentions_.push_back(unet_transformer(o, c));
    attentions->push_back(attentions_.back());
    resnets_.push_back(unet_resnet(c, c, o.temb_channels, eps));
    resnets->push_back(resnets_.back());
  }
}

at::Tensor UNetMidBlockSpatioTemporalImpl::forward(const at::Tensor& x, const at::Tensor& temb,
                                                   const at::Tensor& context, const at::Tensor& image_only_indicator) {
  auto h = resnets_[0](x, temb, image_only_indicator);
  for (size_t i = 0; i < attentions_.size(); ++i) {
    h = attentions_[i](h, context, image_only_indicator);
    h = resnets_[i + 1](h, temb, image_only_indicator);
  }
  return h;
}

// ---------------------------------------------------------------------------------------------------------
MidBlockTemporalDecoderImpl::MidBlockTemporalDecoderImpl(int64_t in_channels, int64_t out_channels,
                                                         int64_t attention_head_dim, int64_t num_layers) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  attentions = register_module("attentions", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i) {
    resnets_.push_back(decoder_resnet(i == 0 ? in_channels : out_channels, out_channels));
    resnets->push_back(resnets_.back());
  }
  AttentionModuleOptions a;
  a.query_dim = in_channels;
  a.heads = in_channels / attention_head_dim;
  a.dim_head = attention_head_dim;
  a.eps = 1e-6;
  a.norm_num_groups = 32;
  a.bias = true;
  a.residual_connection = true;
  attentions_.push_back(Attention(a));
  attentions->push_back(attentions_.back());
}

at::Tensor MidBlockTemporalDecoderImpl::forward(const at::Tensor& x, const at::Tensor& image_only_indicator) {
  auto h = resnets_[0](x, at::Tensor(), image_only_indicator);
  // diffusers zips resnets[1:] with the attentions: only min(num_layers − 1, 1) attention/resnet pairs run.
  for (size_t i = 0; i + 1 < resnets_.size() && i < attentions_.size(); ++i) {
    h = attentions_[i](h);
    h = resnets_[i + 1](h, at::Tensor(), image_only_indicator);
  }
  return h;
}

// ---------------------------------------------------------------------------------------------------------
UpBlockTemporalDecoderImpl::UpBlockTemporalDecoderImpl(int64_t in_channels, int64_t out_channels, int64_t num_layers,
                                                       bool add_upsample) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i) {
    resnets_.push_back(decoder_resnet(i == 0 ? in_channels : out_channels, out_channels));
    resnets->push_back(resnets_.back());
  }
  if (add_upsample) {
    upsamplers = register_module("upsamplers", torch::nn::ModuleList());
    up_ = Upsample2D(Upsample2DOptions{out_channels, true, out_channels});
    upsamplers->push_back(up_);
  }
}

at::Tensor UpBlockTemporalDecoderImpl::forward(const at::Tensor& x, const at::Tensor& image_only_indicator) {
  auto h = x;
  for (auto& r : resnets_) h = r(h, at::Tensor(), image_only_indicator);
  if (up_) h = up_(h);
  return h;
}

}  // namespace clipgen::blocks
