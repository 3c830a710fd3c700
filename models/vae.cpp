#include "models/vae.h"

#include <torch/torch.h>

namespace clipgen {

namespace {
blocks::UNetBlockOptions vae_block(const VAECoderOptions& o, int64_t in, int64_t out, int64_t layers) {
  blocks::UNetBlockOptions b;
  b.in_channels = in;
  b.out_channels = out;
  b.temb_channels = 0;
  b.num_layers = layers;
  b.resnet_eps = 1e-6;
  b.resnet_act_fn = o.act_fn;
  b.resnet_groups = o.norm_num_groups;
  b.downsample_padding = 0;
  return b;
}

blocks::UNetMidBlock2D vae_mid(const VAECoderOptions& o) {
  const int64_t c = o.block_out_channels.back();
  auto b = vae_block(o, c, c, 1);
  b.attention_head_dim = c;
  b.add_attention = o.mid_block_add_attention;
  return blocks::UNetMidBlock2D(b);
}
}  // namespace

EncoderImpl::EncoderImpl(const VAECoderOptions& o) {
  const auto& ch = o.block_out_channels;
  conv_in = register_module("conv_in", blocks::Conv2d(blocks::Conv2dOptions{o.in_channels, ch[0], 3, 1, 1}));
  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  int64_t out = ch[0];
  for (size_t i = 0; i < ch.size(); ++i) {
    const int64_t in = out;
    out = ch[i];
    auto b = vae_block(o, in, out, o.layers_per_block);
    b.add_downsample = i + 1 < ch.size();
    down_.push_back(blocks::DownEncoderBlock2D(b));
    down_blocks->push_back(down_.back());
  }
  mid_block = register_module("mid_block", vae_mid(o));
  conv_norm_out = register_module(
      "conv_norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(o.norm_num_groups, ch.back()).eps(1e-6)));
  const int64_t zc = o.double_z ? 2 * o.out_channels : o.out_channels;
  conv_out = register_module("conv_out", blocks::Conv2d(blocks::Conv2dOptions{ch.back(), zc, 3, 1, 1}));
}

at::Tensor EncoderImpl::forward(const at::Tensor& x) {
  auto h = conv_in(x);
  for (auto& d : down_) h = d(h);
  h = mid_block(h);
  return conv_out(at::silu(conv_norm_out(h)));
}

DecoderImpl::DecoderImpl(const VAECoderOptions& o) {
  const auto& ch = o.block_out_channels;
  conv_in = register_module("conv_in", blocks::Conv2d(blocks::Conv2dOptions{o.in_channels, ch.back(), 3, 1, 1}));
  mid_block = register_module("mid_block", vae_mid(o));
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  std::vector<int64_t> rev(ch.rbegin(), ch.rend());
  int64_t out = rev[0];
  for (size_t i = 0; i < rev.size(); ++i) {
    const int64_t prev = out;
    out = rev[i];
    auto b = vae_block(o, prev, out, o.layers_per_block + 1);
    b.add_upsample = i + 1 < rev.size();
    up_.push_back(blocks::UpDecoderBlock2D(b));
    up_blocks->push_back(up_.back());
  }
  conv_norm_out = register_module(
      "conv_norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(o.norm_num_groups, ch[0]).eps(1e-6)));
  conv_out = register_module("conv_out", blocks::Conv2d(blocks::Conv2dOptions{ch[0], o.out_channels, 3, 1, 1}));
}

at::Tensor DecoderImpl::forward(const at::Tensor& z) {
  auto h = conv_in(z);
  h = mid_block(h);
  for (auto& u : up_) h = u(h);
  return conv_out(at::silu(conv_norm_out(h)));
}

}  // namespace clipgen
