#include "models/blocks/embeddings.h"

#include <cmath>

#include <torch/torch.h>

namespace clipgen::blocks {

at::Tensor timestep_embedding(const at::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos,
                              double downscale_freq_shift, double scale, double max_period) {
  TORCH_CHECK(timesteps.dim() == 1, "timestep_embedding: timesteps must be 1-D, got ", timesteps.sizes());
  const int64_t half = dim / 2;
  auto f32 = timesteps.options().dtype(torch::kFloat);
  // exponent_i = −ln(max_period)·i / (half − shift), computed in float32 as diffusers does.
  auto exponent = torch::arange(0, half, f32) * static_cast<float>(-std::log(max_period));
  exponent = exponent / static_cast<float>(half - downscale_freq_shift);
  auto freqs = exponent.exp();                                                   // [half]
  auto emb = timesteps.to(torch::kFloat).unsqueeze(1) * freqs.unsqueeze(0);     // [N, half]
  if (scale != 1.0) emb = emb * scale;
  emb = flip_sin_to_cos ? torch::cat({emb.cos(), emb.sin()}, -1) : torch::cat({emb.sin(), emb.cos()}, -1);  // [N, 2·half]
  if (dim % 2 == 1) emb = at::constant_pad_nd(emb, {0, 1, 0, 0}, 0);
  return emb;
}

at::Tensor TimestepsImpl::forward(const at::Tensor& timesteps) const {
  return timestep_embedding(timesteps, opt_.num_channels, opt_.flip_sin_to_cos, opt_.downscale_freq_shift);
}

TimestepEmbeddingImpl::TimestepEmbeddingImpl(const TimestepEmbeddingOptions& o) : opt_(o) {
  check_activation(opt_.act_fn, "act_fn");
  if (!opt_.post_act_fn.empty()) check_activation(opt_.post_act_fn, "timestep_post_act");
  linear_1 = register_module("linear_1", Linear(opt_.in_channels, opt_.time_embed_dim));
  if (opt_.cond_proj_dim > 0)
    cond_proj = register_module("cond_proj", Linear(opt_.cond_proj_dim, opt_.in_channels, false));
  const int64_t out = opt_.out_dim > 0 ? opt_.out_dim : opt_.time_embed_dim;
  linear_2 = register_module("linear_2", Linear(opt_.time_embed_dim, out));
}

at::Tensor TimestepEmbeddingImpl::forward(const at::Tensor& sample, const at::Tensor& condition) {
  auto x = sample;
  if (condition.defined() && cond_proj) x = x + cond_proj(condition);
  x = linear_2(activation(opt_.act_fn, linear_1(x)));
  if (!opt_.post_act_fn.empty()) x = activation(opt_.post_act_fn, x);
  return x;
}

}  // namespace clipgen::blocks
