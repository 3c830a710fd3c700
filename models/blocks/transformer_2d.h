// diffusers Transformer2DModel (continuous input), BasicTransformerBlock (norm_type "layer_norm"),
// FeedForward and its GEGLU / GELU projections (models/attention.py, models/activations.py,
// models/transformers/transformer_2d.py).
#pragma once
#include <string>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>

#include "models/blocks/attention.h"
#include "models/blocks/layers.h"

namespace clipgen::blocks {

// GEGLU: proj Linear(dim_in, 2·dim_out); [h, gate] = chunk(2); h · gelu(gate) (exact erf GELU).
// GELU ("gelu" / "gelu-approximate"): proj Linear(dim_in, dim_out); gelu(x).
class GEGLUImpl : public torch::nn::Module {
public:
  GEGLUImpl(int64_t dim_in, int64_t dim_out, bool bias = true);
  at::Tensor forward(const at::Tensor& x);
  Linear proj{nullptr};
};
TORCH_MODULE(GEGLU);

class GELUImpl : public torch::nn::Module {
public:
  GELUImpl(int64_t dim_in, int64_t dim_out, bool approximate_tanh = false, bool bias = true);
  at::Tensor forward(const at::Tensor& x);
  Linear proj{nullptr};

private:
  bool tanh_;
};
TORCH_MODULE(GELU);

struct FeedForwardOptions {
  int64_t dim = 0;
  int64_t dim_out = 0;            // 0 → dim
  int64_t mult = 4;
  int64_t inner_dim = 0;          // 0 → dim·mult
  std::string activation_fn = "geglu";  // "geglu", "gelu", "gelu-approximate"
  bool bias = true;
};

// net.0 = GEGLU/GELU projection, net.1 = Dropout (no parameters), net.2 = Linear(inner, dim_out).
class FeedForwardImpl : public torch::nn::Module {
public:
  explicit FeedForwardImpl(const FeedForwardOptions& o);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::ModuleList net{nullptr};

private:
  GEGLU geglu_{nullptr};
  GELU gelu_{nullptr};
  Linear out_{nullptr};
};
TORCH_MODULE(FeedForward);

struct BasicTransformerBlockOptions {
  int64_t dim = 0;
  int64_t num_attention_heads = 0;
  int64_t attention_head_dim = 0;
  int64_t cross_attention_dim = 0;  // 0 → no attn2 (unless double_self_attention)
  bool only_cross_attention = false;
  bool double_self_attention = false;
  bool upcast_attention = false;
  bool attention_bias = false;
  bool attention_out_bias = true;
  bool norm_elementwise_affine = true;
  double norm_eps = 1e-5;
  std::string activation_fn = "geglu";
  int64_t ff_inner_dim = 0;         // 0 → 4·dim
  bool ff_bias = true;
};

// norm_type "layer_norm": x += attn1(norm1(x)); x += attn2(norm2(x), context); x += ff(norm3(x)).
class BasicTransformerBlockImpl : public torch::nn::Module {
public:
  explicit BasicTransformerBlockImpl(const BasicTransformerBlockOptions& o);
  // x [B, L, dim], context [B, Lk, cross_attention_dim]
  at::Tensor forward(const at::Tensor& x, const at::Tensor& context = {});
  const BasicTransformerBlockOptions& options() const { return opt_; }

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  Attention attn1{nullptr}, attn2{nullptr};
  FeedForward ff{nullptr};

private:
  BasicTransformerBlockOptions opt_;
};
TORCH_MODULE(BasicTransformerBlock);

struct Transformer2DModelOptions {
  int64_t num_attention_heads = 16;
  int64_t attention_head_dim = 88;
  int64_t in_channels = 0;
  int64_t out_channels = 0;         // 0 → in_channels
  int64_t num_layers = 1;
  int64_t cross_attention_dim = 0;
  int64_t norm_num_groups = 32;
  bool use_linear_projection = false;
  bool only_cross_attention = false;
  bool double_self_attention = false;
  bool upcast_attention = false;
  bool attention_bias = false;
  bool norm_elementwise_affine = true;
  double norm_eps = 1e-5;           // LayerNorms in the blocks; the input GroupNorm uses 1e-6 as diffusers
};

// GroupNorm(eps 1e-6) → proj_in (1×1 conv before flattening, or Linear after flattening when
// use_linear_projection) → transformer_blocks → proj_out → + residual.
class Transformer2DModelImpl : public torch::nn::Module {
public:
  explicit Transformer2DModelImpl(const Transformer2DModelOptions& o);
  // x [B, C, H, W], context [B, Lk, cross_attention_dim] → [B, out_channels, H, W]
  at::Tensor forward(const at::Tensor& x, const at::Tensor& context = {});
  const Transformer2DModelOptions& options() const { return opt_; }

  torch::nn::GroupNorm norm{nullptr};
  Conv2d proj_in_conv{nullptr}, proj_out_conv{nullptr};        // registered as proj_in / proj_out
  Linear proj_in_linear{nullptr}, proj_out_linear{nullptr};    // registered as proj_in / proj_out
  torch::nn::ModuleList transformer_blocks{nullptr};

private:
  Transformer2DModelOptions opt_;
  std::vector<BasicTransformerBlock> blocks_;
};
TORCH_MODULE(Transformer2DModel);

}  // namespace clipgen::blocks
