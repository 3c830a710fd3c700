#include "models/blocks/spatio_temporal.h"

#include <cmath>

#include <torch/torch.h>

#include "core/error.h"

namespace clipgen::blocks {

namespace {
torch::nn::GroupNorm group_norm(int64_t channels, double eps) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(32, channels).eps(eps));
}
torch::nn::LayerNorm layer_norm(int64_t dim) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-5));
}
}  // namespace

// ---------------------------------------------------------------------------------------------------------
AlphaBlenderImpl::AlphaBlenderImpl(const AlphaBlenderOptions& o) : opt_(o) {
  const auto& s = opt_.merge_strategy;
  if (s != "learned" && s != "fixed" && s != "learned_with_images")
    throw UnsupportedError("unsupported AlphaBlender merge_strategy=\"" + s +
                           "\" (supported: learned, fixed, learned_with_images)");
  auto init = torch::full({1}, opt_.alpha);
  if (s == "fixed")
    mix_factor = register_buffer("mix_factor", init);
  else
    mix_factor = register_parameter("mix_factor", init);
}

at::Tensor AlphaBlenderImpl::alpha(const at::Tensor& image_only_indicator, int64_t ndims) const {
  const auto& s = opt_.merge_strategy;
  if (s == "fixed") return mix_factor;
  if (s == "learned") return at::sigmoid(mix_factor);
  TORCH_CHECK(image_only_indicator.defined(), "AlphaBlender(learned_with_images) needs image_only_indicator");
  // [B, F]: 1 where the frame is a still image, sigmoid(mix_factor) elsewhere.
  auto a = at::where(image_only_indicator.to(at::kBool), at::ones({1, 1}, mix_factor.options()),
                     at::sigmoid(mix_factor).unsqueeze(-1));
  if (ndims == 5) return a.unsqueeze(1).unsqueeze(-1).unsqueeze(-1);  // [B, 1, F, 1, 1]
  if (ndims == 3) return a.reshape({-1, 1, 1});                      // [B·F, 1, 1]
  TORCH_CHECK(false, "AlphaBlender: unexpected input rank ", ndims, " (3 or 5)");
}

at::Tensor AlphaBlenderImpl::forward(const at::Tensor& x_spatial, const at::Tensor& x_temporal,
                                     const at::Tensor& image_only_indicator) {
  auto a = alpha(image_only_indicator, x_spatial.dim()).to(x_spatial.scalar_type());
  if (opt_.switch_spatial_to_temporal_mix) a = 1.0 - a;
  return a * x_spatial + (1.0 - a) * x_temporal;
}

// ---------------------------------------------------------------------------------------------------------
TemporalConv3dImpl::TemporalConv3dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_t)
    : in_(in_channels), out_(out_channels), kt_(kernel_t) {
  TORCH_CHECK(kt_ % 2 == 1, "TemporalConv3d: temporal kernel must be odd, got ", kt_);
  torch::NoGradGuard ng;
  auto w = torch::empty({out_, in_, kt_, 1, 1});
  auto b = torch::empty({out_});
  if (!EmptyInitGuard::active()) {  // torch's default: U(±1/sqrt(fan_in))
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_ * kt_));
    w.uniform_(-bound, bound);
    b.uniform_(-bound, bound);
  }
  weight = register_parameter("weight", w);
  bias = register_parameter("bias", b);
}

at::Tensor TemporalConv3dImpl::forward(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 5 && x.size(1) == in_, "TemporalConv3d: expected [B, ", in_, ", F, H, W], got ", x.sizes());
  const int64_t B = x.size(0), F = x.size(2), H = x.size(3), W = x.size(4);
  // A (kt,1,1) Conv3d is a (kt,1) Conv2d over [frames, pixels]: identical sums, and Conv2d is the fast CPU path.
  auto x4 = x.contiguous().view({B, in_, F, H * W});                        // [B, Cin, F, HW]
  auto y = at::conv2d(x4, weight.view({out_, in_, kt_, 1}), bias, {1, 1}, {kt_ / 2, 0});  // [B, Cout, F, HW]
  if (FlopCounter::enabled()) FlopCounter::add(2.0 * y.numel() * in_ * kt_);
  return y.view({B, out_, F, H, W});
}

// ---------------------------------------------------------------------------------------------------------
TemporalResnetBlockImpl::TemporalResnetBlockImpl(const TemporalResnetBlockOptions& o) : opt_(o) {
  if (opt_.out_channels <= 0) opt_.out_channels = opt_.in_channels;
  const int64_t cin = opt_.in_channels, cout = opt_.out_channels;
  norm1 = register_module("norm1", group_norm(cin, opt_.eps));
  conv1 = register_module("conv1", TemporalConv3d(cin, cout, 3));
  if (opt_.temb_channels > 0) time_emb_proj = register_module("time_emb_proj", Linear(opt_.temb_channels, cout));
  norm2 = register_module("norm2", group_norm(cout, opt_.eps));
  conv2 = register_module("conv2", TemporalConv3d(cout, cout, 3));
  if (cin != cout) conv_shortcut = register_module("conv_shortcut", TemporalConv3d(cin, cout, 1));
}

at::Tensor TemporalResnetBlockImpl::forward(const at::Tensor& x, const at::Tensor& temb) {
  auto h = conv1(at::silu(norm1(x)));  // [B, Cout, F, H, W]
  if (time_emb_proj) {
    TORCH_CHECK(temb.defined(), "TemporalResnetBlock: this block has time_emb_proj but no temb was given");
    auto t = time_emb_proj(at::silu(temb));                       // [B, F, Cout]
    h = h + t.permute({0, 2, 1}).unsqueeze(-1).unsqueeze(-1);     // [B, Cout, F, 1, 1]
  }
  h = conv2(at::silu(norm2(h)));
  auto skip = conv_shortcut ? conv_shortcut(x) : x;
  return skip + h;
}

// ---------------------------------------------------------------------------------------------------------
SpatioTemporalResBlockImpl::SpatioTemporalResBlockImpl(const SpatioTemporalResBlockOptions& o) {
  const int64_t cout = o.out_channels > 0 ? o.out_channels : o.in_channels;
  ResnetBlock2DOptions s;
  s.in_channels = o.in_channels;
  s.out_channels = cout;
  s.temb_channels = o.temb_channels;
  s.eps = o.eps;
  spatial_res_block = register_module("spatial_res_block", ResnetBlock2D(s));
  TemporalResnetBlockOptions t;
  t.in_channels = cout;
  t.out_channels = cout;
  t.temb_channels = o.temb_channels;
  t.eps = o.temporal_eps >= 0 ? o.temporal_eps : o.eps;
  temporal_res_block = register_module("temporal_res_block", TemporalResnetBlock(t));
  time_mixer = register_module(
      "time_mixer", AlphaBlender(AlphaBlenderOptions{o.merge_factor, o.merge_strategy, o.switch_spatial_to_temporal_mix}));
}

at::Tensor SpatioTemporalResBlockImpl::forward(const at::Tensor& x, const at::Tensor& temb,
                                               const at::Tensor& image_only_indicator) {
  const int64_t F = image_only_indicator.size(-1);
  auto h = spatial_res_block(x, temb);  // [B·F, C, H, W]
  const int64_t BF = h.size(0), C = h.size(1), H = h.size(2), W = h.size(3);
  TORCH_CHECK(BF % F == 0, "SpatioTemporalResBlock: batch·frames ", BF, " is not a multiple of frames ", F);
  const int64_t B = BF / F;
  auto spatial5 = h.view({B, F, C, H, W});                      // [B, F, C, H, W]
  auto temporal = temporal_res_block(spatial5.permute({0, 2, 1, 3, 4}),  // [B, C, F, H, W]
                                     temb.defined() ? temb.view({B, F, -1}) : temb);  // temb [B, F, T]
  // Blend in the [B, F, C, H, W] layout (the same elementwise arithmetic as diffusers' [B, C, F, H, W]).
  auto a = time_mixer->alpha(image_only_indicator, 5).to(h.scalar_type());  // [B, 1, F, 1, 1] or [1]
  if (a.dim() == 5) a = a.permute({0, 2, 1, 3, 4});                          // [B, F, 1, 1, 1]
  if (time_mixer->options().switch_spatial_to_temporal_mix) a = 1.0 - a;
  auto out = a * spatial5 + (1.0 - a) * temporal.permute({0, 2, 1, 3, 4});   // [B, F, C, H, W]
  return out.reshape({BF, C, H, W});
}

// ---------------------------------------------------------------------------------------------------------
TemporalBasicTransformerBlockImpl::TemporalBasicTransformerBlockImpl(const TemporalBasicTransformerBlockOptions& o)
    : opt_(o) {
  is_res_ = o.dim == o.time_mix_inner_dim;
  const int64_t inner = o.time_mix_inner_dim;
  norm_in = register_module("norm_in", layer_norm(o.dim));
  FeedForwardOptions fin;
  fin.dim = o.dim;
  fin.dim_out = inner;
  fin.activation_fn = "geglu";
  ff_in = register_module("ff_in", FeedForward(fin));
  norm1 = register_module("norm1", layer_norm(inner));
  AttentionModuleOptions a;
  a.query_dim = inner;
  a.heads = o.num_attention_heads;
  a.dim_head = o.attention_head_dim;
  attn1 = register_module("attn1", Attention(a));
  if (o.cross_attention_dim > 0) {
    norm2 = register_module("norm2", layer_norm(inner));
    a.cross_attention_dim = o.cross_attention_dim;
    attn2 = register_module("attn2", Attention(a));
  }
  norm3 = register_module("norm3", layer_norm(inner));
  FeedForwardOptions f;
  f.dim = inner;
  f.activation_fn = "geglu";
  ff = register_module("ff", FeedForward(f));
}

at::Tensor TemporalBasicTransformerBlockImpl::forward(const at::Tensor& x, int64_t num_frames,
                                                      const at::Tensor& context) {
  const int64_t BF = x.size(0), S = x.size(1), C = x.size(2), F = num_frames;
  TORCH_CHECK(BF % F == 0, "TemporalBasicTransformerBlock: batch·frames ", BF, " is not a multiple of frames ", F);
  const int64_t B = BF / F;
  auto h = x.reshape({B, F, S, C}).permute({0, 2, 1, 3}).reshape({B * S, F, C});  // [B·S, F, C]
  const auto residual = h;
  h = ff_in(norm_in(h));  // [B·S, F, inner]
  if (is_res_) h = h + residual;
  h = attn1(norm1(h)) + h;
  if (attn2) h = attn2(norm2(h), context) + h;
  auto f = ff(norm3(h));
  h = is_res_ ? f + h : f;
  const int64_t Ci = h.size(2);
  return h.reshape({B, S, F, Ci}).permute({0, 2, 1, 3}).reshape({B * F, S, Ci});  // [B·F, S, inner]
}

// ---------------------------------------------------------------------------------------------------------
TransformerSpatioTemporalModelImpl::TransformerSpatioTemporalModelImpl(const TransformerSpatioTemporalModelOptions& o)
    : opt_(o) {
  const int64_t inner = o.num_attention_heads * o.attention_head_dim;
  const int64_t c = o.in_channels;
  TORCH_CHECK(inner == c, "TransformerSpatioTemporalModel: heads·head_dim (", inner, ") must equal in_channels (", c,
              ") — diffusers adds the frame embedding of width in_channels to the inner features");
  norm = register_module("norm", group_norm(c, 1e-6));
  proj_in = register_module("proj_in", Linear(c, inner));
  transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList());
  temporal_transformer_blocks = register_module("temporal_transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers; ++i) {
    BasicTransformerBlockOptions b;
    b.dim = inner;
    b.num_attention_heads = o.num_attention_heads;
    b.attention_head_dim = o.attention_head_dim;
    b.cross_attention_dim = o.cross_attention_dim;
    spatial_.push_back(BasicTransformerBlock(b));
    transformer_blocks->push_back(spatial_.back());
  }
  for (int64_t i = 0; i < o.num_layers; ++i) {
    TemporalBasicTransformerBlockOptions t{inner, inner, o.num_attention_heads, o.attention_head_dim,
                                           o.cross_attention_dim};
    temporal_.push_back(TemporalBasicTransformerBlock(t));
    temporal_transformer_blocks->push_back(temporal_.back());
  }
  TimestepEmbeddingOptions te;
  te.in_channels = c;
  te.time_embed_dim = 4 * c;
  te.out_dim = c;
  time_pos_embed = register_module("time_pos_embed", TimestepEmbedding(te));
  time_proj = register_module("time_proj", Timesteps(TimestepsOptions{c, true, 0.0}));
  time_mixer = register_module("time_mixer", AlphaBlender(AlphaBlenderOptions{0.5, "learned_with_images", false}));
  proj_out = register_module("proj_out", Linear(inner, c));
}

at::Tensor TransformerSpatioTemporalModelImpl::forward(const at::Tensor& x, const at::Tensor& encoder_hidden_states,
                                                       const at::Tensor& image_only_indicator) {
  const int64_t BF = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), S = H * W;
  const int64_t F = image_only_indicator.size(-1);
  TORCH_CHECK(BF % F == 0, "TransformerSpatioTemporalModel: batch·frames ", BF, " is not a multiple of frames ", F);
  const int64_t B = BF / F;

  // Temporal cross-attention context: the first frame's encoder states of each video, one row per pixel.
  // diffusers lays the rows out pixel-major ([S, B] → S·B rows) while the temporal block's tokens are
  // video-major (row b·S + s); so token row r attends to video (r mod B)'s context. Reproduced as is.
  at::Tensor time_context;
  if (encoder_hidden_states.defined()) {
    const int64_t L = encoder_hidden_states.size(1), Cx = encoder_hidden_states.size(2);
    auto first = encoder_hidden_states.reshape({B, F, L, Cx}).select(1, 0);          // [B, L, Cx]
    time_context = first.unsqueeze(0).expand({S, B, L, Cx}).reshape({S * B, L, Cx});  // [S·B, L, Cx]
  }

  const auto& residual = x;
  auto h = norm(x).permute({0, 2, 3, 1}).reshape({BF, S, C});  // [B·F, S, C]
  h = proj_in(h);                                                // [B·F, S, inner]

  // Frame-position embedding: frame index f of each row b·F + f.
  auto frames = torch::arange(F, torch::TensorOptions().dtype(at::kLong).device(x.device())).repeat({B});  // [B·F]
  auto emb = time_pos_embed(time_proj(frames).to(h.scalar_type())).unsqueeze(1);  // [B·F, 1, C]

  for (size_t i = 0; i < spatial_.size(); ++i) {
    h = spatial_[i](h, encoder_hidden_states);
    auto mix = temporal_[i](h + emb, F, time_context);
    h = time_mixer(h, mix, image_only_indicator);
  }
  h = proj_out(h);                                                         // [B·F, S, C]
  h = h.reshape({BF, H, W, C}).permute({0, 3, 1, 2}).contiguous();         // [B·F, C, H, W]
  return h + residual;
}

}  // namespace clipgen::blocks
