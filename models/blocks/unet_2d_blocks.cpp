#include "models/blocks/unet_2d_blocks.h"

#include <torch/torch.h>

#include "core/error.h"

namespace clipgen::blocks {

ResnetBlock2DOptions resnet_options(const UNetBlockOptions& o, int64_t in_channels, int64_t out_channels) {
  ResnetBlock2DOptions r;
  r.in_channels = in_channels;
  r.out_channels = out_channels;
  r.temb_channels = o.temb_channels;
  r.groups = o.resnet_groups;
  r.eps = o.resnet_eps;
  r.non_linearity = o.resnet_act_fn;
  r.time_embedding_norm = o.resnet_time_scale_shift;
  r.output_scale_factor = o.output_scale_factor;
  return r;
}

Transformer2DModelOptions transformer_options(const UNetBlockOptions& o, int64_t channels, int64_t layer_index) {
  if (o.num_attention_heads <= 0 || channels % o.num_attention_heads != 0)
    throw UnsupportedError("num_attention_heads=" + std::to_string(o.num_attention_heads) +
                           " does not divide the block's channels (" + std::to_string(channels) + ")");
  const auto& tl = o.transformer_layers_per_block;
  TORCH_CHECK(!tl.empty(), "transformer_layers_per_block is empty");
  Transformer2DModelOptions t;
  t.num_attention_heads = o.num_attention_heads;
  t.attention_head_dim = channels / o.num_attention_heads;
  t.in_channels = channels;
  t.num_layers = tl.size() == 1 ? tl[0] : tl.at(layer_index);
  t.cross_attention_dim = o.cross_attention_dim;
  t.norm_num_groups = o.resnet_groups;
  t.use_linear_projection = o.use_linear_projection;
  t.only_cross_attention = o.only_cross_attention;
  t.upcast_attention = o.upcast_attention;
  return t;
}

// ---- down ----

DownBlock2DImpl::DownBlock2DImpl(const UNetBlockOptions& o, bool with_attention) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  if (with_attention) attentions = register_module("attentions", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers; ++i) {
    resnets_.push_back(ResnetBlock2D(resnet_options(o, i == 0 ? o.in_channels : o.out_channels, o.out_channels)));
    resnets->push_back(resnets_.back());
    if (with_attention) {
      attentions_.push_back(Transformer2DModel(transformer_options(o, o.out_channels, i)));
      attentions->push_back(attentions_.back());
    }
  }
  if (o.add_downsample) {
    down_ = Downsample2D(Downsample2DOptions{o.out_channels, true, o.out_channels, o.downsample_padding});
    downsamplers = register_module("downsamplers", torch::nn::ModuleList(down_));
  }
}

at::Tensor DownBlock2DImpl::forward(const at::Tensor& x, const at::Tensor& temb, const at::Tensor& context,
                                    SkipList& skips) {
  at::Tensor h = x;
  for (size_t i = 0; i < resnets_.size(); ++i) {
    h = resnets_[i](h, temb);
    if (!attentions_.empty()) h = attentions_[i](h, context);
    skips.push_back(h);
  }
  if (down_) {
    h = down_(h);
    skips.push_back(h);
  }
  return h;
}

// ---- up ----

UpBlock2DImpl::UpBlock2DImpl(const UNetBlockOptions& o, bool with_attention) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  if (with_attention) attentions = register_module("attentions", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers; ++i) {
    const int64_t skip_ch = i == o.num_layers - 1 ? o.in_channels : o.out_channels;
    const int64_t in_ch = i == 0 ? o.prev_output_channel : o.out_channels;
    resnets_.push_back(ResnetBlock2D(resnet_options(o, in_ch + skip_ch, o.out_channels)));
    resnets->push_back(resnets_.back());
    if (with_attention) {
      attentions_.push_back(Transformer2DModel(transformer_options(o, o.out_channels, i)));
      attentions->push_back(attentions_.back());
    }
  }
  if (o.add_upsample) {
    up_ = Upsample2D(Upsample2DOptions{o.out_channels, true, o.out_channels});
    upsamplers = register_module("upsamplers", torch::nn::ModuleList(up_));
  }
}

at::Tensor UpBlock2DImpl::forward(const at::Tensor& x, SkipList& skips, const at::Tensor& temb,
                                  const at::Tensor& context, const std::optional<std::vector<int64_t>>& upsample_size) {
  at::Tensor h = x;
  for (size_t i = 0; i < resnets_.size(); ++i) {
    TORCH_CHECK(!skips.empty(), "UpBlock2D: ran out of skip connections");
    auto skip = std::move(skips.back());
    skips.pop_back();
    h = torch::cat({h, skip}, 1);  // [B, C + C_skip, H, W]
    h = resnets_[i](h, temb);
    if (!attentions_.empty()) h = attentions_[i](h, context);
  }
  if (up_) h = up_(h, upsample_size);
  return h;
}

// ---- mid ----

UNetMidBlock2DCrossAttnImpl::UNetMidBlock2DCrossAttnImpl(const UNetBlockOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  attentions = register_module("attentions", torch::nn::ModuleList());
  resnets_.push_back(ResnetBlock2D(resnet_options(o, o.in_channels, o.in_channels)));
  resnets->push_back(resnets_.back());
  for (int64_t i = 0; i < o.num_layers; ++i) {
    attentions_.push_back(Transformer2DModel(transformer_options(o, o.in_channels, i)));
    attentions->push_back(attentions_.back());
    resnets_.push_back(ResnetBlock2D(resnet_options(o, o.in_channels, o.in_channels)));
    resnets->push_back(resnets_.back());
  }
}

at::Tensor UNetMidBlock2DCrossAttnImpl::forward(const at::Tensor& x, const at::Tensor& temb, const at::Tensor& context) {
  auto h = resnets_[0](x, temb);
  for (size_t i = 0; i < attentions_.size(); ++i) h = resnets_[i + 1](attentions_[i](h, context), temb);
  return h;
}

UNetMidBlock2DImpl::UNetMidBlock2DImpl(const UNetBlockOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  attentions = register_module("attentions", torch::nn::ModuleList());
  const int64_t c = o.in_channels;
  resnets_.push_back(ResnetBlock2D(resnet_options(o, c, c)));
  resnets->push_back(resnets_.back());
  for (int64_t i = 0; i < o.num_layers; ++i) {
    if (o.add_attention) {
      const int64_t head_dim = o.attention_head_dim > 0 ? o.attention_head_dim : c;
      AttentionModuleOptions a;
      a.query_dim = c;
      a.heads = c / head_dim;
      a.dim_head = head_dim;
      a.bias = true;
      a.upcast_softmax = true;
      a.norm_num_groups = o.resnet_time_scale_shift == "default" ? o.resnet_groups : 0;
      a.eps = o.resnet_eps;
      a.residual_connection = true;
      a.rescale_output_factor = o.output_scale_factor;
      attentions_.push_back(Attention(a));
      attentions->push_back(attentions_.back());
    }
    resnets_.push_back(ResnetBlock2D(resnet_options(o, c, c)));
    resnets->push_back(resnets_.back());
  }
}

at::Tensor UNetMidBlock2DImpl::forward(const at::Tensor& x, const at::Tensor& temb) {
  auto h = resnets_[0](x, temb);
  for (size_t i = 0; i + 1 < resnets_.size(); ++i) {
    if (!attentions_.empty()) h = attentions_[i](h);
    h = resnets_[i + 1](h, temb);
  }
  return h;
}

// ---- VAE ----

DownEncoderBlock2DImpl::DownEncoderBlock2DImpl(const UNetBlockOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers; ++i) {
    auto ro = resnet_options(o, i == 0 ? o.in_channels : o.out_channels, o.out_channels);
    ro.temb_channels = 0;
    resnets_.push_back(ResnetBlock2D(ro));
    resnets->push_back(resnets_.back());
  }
  if (o.add_downsample) {
    down_ = Downsample2D(Downsample2DOptions{o.out_channels, true, o.out_channels, o.downsample_padding});
    downsamplers = register_module("downsamplers", torch::nn::ModuleList(down_));
  }
}

at::Tensor DownEncoderBlock2DImpl::forward(const at::Tensor& x) {
  at::Tensor h = x;
  for (auto& r : resnets_) h = r(h);
  if (down_) h = down_(h);
  return h;
}

UpDecoderBlock2DImpl::UpDecoderBlock2DImpl(const UNetBlockOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers; ++i) {
    resnets_.push_back(ResnetBlock2D(resnet_options(o, i == 0 ? o.in_channels : o.out_channels, o.out_channels)));
    resnets->push_back(resnets_.back());
  }
  if (o.add_upsample) {
    up_ = Upsample2D(Upsample2DOptions{o.out_channels, true, o.out_channels});
    upsamplers = register_module("upsamplers", torch::nn::ModuleList(up_));
  }
}

at::Tensor UpDecoderBlock2DImpl::forward(const at::Tensor& x, const at::Tensor& temb) {
  at::Tensor h = x;
  for (auto& r : resnets_) h = r(h, temb);
  if (up_) h = up_(h);
  return h;
}

}  // namespace clipgen::blocks
