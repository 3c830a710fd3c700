#include "models/blocks/transformer_2d.h"

#include <torch/torch.h>

#include "core/error.h"

namespace clipgen::blocks {

GEGLUImpl::GEGLUImpl(int64_t dim_in, int64_t dim_out, bool bias) {
  proj = register_module("proj", Linear(dim_in, dim_out * 2, bias));
}

at::Tensor GEGLUImpl::forward(const at::Tensor& x) {
  auto hg = proj(x).chunk(2, -1);  // [..., dim_out] each: hidden, gate
  return hg[0] * at::gelu(hg[1]);
}

GELUImpl::GELUImpl(int64_t dim_in, int64_t dim_out, bool approximate_tanh, bool bias) : tanh_(approximate_tanh) {
  proj = register_module("proj", Linear(dim_in, dim_out, bias));
}

at::Tensor GELUImpl::forward(const at::Tensor& x) { return at::gelu(proj(x), tanh_ ? "tanh" : "none"); }

FeedForwardImpl::FeedForwardImpl(const FeedForwardOptions& o) {
  const int64_t inner = o.inner_dim > 0 ? o.inner_dim : o.dim * o.mult;
  const int64_t out = o.dim_out > 0 ? o.dim_out : o.dim;
  net = register_module("net", torch::nn::ModuleList());
  if (o.activation_fn == "geglu") {
    geglu_ = GEGLU(o.dim, inner, o.bias);
    net->push_back(geglu_);
  } else if (o.activation_fn == "gelu" || o.activation_fn == "gelu-approximate") {
    gelu_ = GELU(o.dim, inner, o.activation_fn == "gelu-approximate", o.bias);
    net->push_back(gelu_);
  } else {
    throw UnsupportedError("unsupported FeedForward activation_fn=\"" + o.activation_fn + "\"");
  }
  net->push_back(torch::nn::Dropout(0.0));
  out_ = Linear(inner, out, o.bias);
  net->push_back(out_);
}

at::Tensor FeedForwardImpl::forward(const at::Tensor& x) {
  return out_(geglu_ ? geglu_(x) : gelu_(x));
}

BasicTransformerBlockImpl::BasicTransformerBlockImpl(const BasicTransformerBlockOptions& o) : opt_(o) {
  auto ln = [&] {
    return torch::nn::LayerNorm(
        torch::nn::LayerNormOptions({o.dim}).eps(o.norm_eps).elementwise_affine(o.norm_elementwise_affine));
  };
  AttentionModuleOptions a1;
  a1.query_dim = o.dim;
  a1.heads = o.num_attention_heads;
  a1.dim_head = o.attention_head_dim;
  a1.bias = o.attention_bias;
  a1.out_bias = o.attention_out_bias;
  a1.upcast_attention = o.upcast_attention;
  a1.cross_attention_dim = o.only_cross_attention ? o.cross_attention_dim : 0;
  norm1 = register_module("norm1", ln());
  attn1 = register_module("attn1", Attention(a1));
  if (o.cross_attention_dim > 0 || o.double_self_attention) {
    AttentionModuleOptions a2 = a1;
    a2.cross_attention_dim = o.double_self_attention ? 0 : o.cross_attention_dim;
    norm2 = register_module("norm2", ln());
    attn2 = register_module("attn2", Attention(a2));
  }
  norm3 = register_module("norm3", ln());
  FeedForwardOptions f;
  f.dim = o.dim;
  f.activation_fn = o.activation_fn;
  f.inner_dim = o.ff_inner_dim;
  f.bias = o.ff_bias;
  ff = register_module("ff", FeedForward(f));
}

at::Tensor BasicTransformerBlockImpl::forward(const at::Tensor& x, const at::Tensor& context) {
  auto h = x + attn1(norm1(x), opt_.only_cross_attention ? context : at::Tensor());
  if (attn2) h = h + attn2(norm2(h), opt_.double_self_attention ? at::Tensor() : context);
  return h + ff(norm3(h));
}

Transformer2DModelImpl::Transformer2DModelImpl(const Transformer2DModelOptions& o) : opt_(o) {
  const int64_t inner = o.num_attention_heads * o.attention_head_dim;
  const int64_t cout = o.out_channels > 0 ? o.out_channels : o.in_channels;
  opt_.out_channels = cout;
  norm = register_module("norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(o.norm_num_groups, o.in_channels).eps(1e-6)));
  if (o.use_linear_projection)
    proj_in_linear = register_module("proj_in", Linear(o.in_channels, inner));
  else
    proj_in_conv = register_module("proj_in", Conv2d(Conv2dOptions{o.in_channels, inner, 1, 1, 0}));
  transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers; ++i) {
    BasicTransformerBlockOptions b;
    b.dim = inner;
    b.num_attention_heads = o.num_attention_heads;
    b.attention_head_dim = o.attention_head_dim;
    b.cross_attention_dim = o.cross_attention_dim;
    b.only_cross_attention = o.only_cross_attention;
    b.double_self_attention = o.double_self_attention;
    b.upcast_attention = o.upcast_attention;
    b.attention_bias = o.attention_bias;
    b.norm_elementwise_affine = o.norm_elementwise_affine;
    b.norm_eps = o.norm_eps;
    blocks_.push_back(BasicTransformerBlock(b));
    transformer_blocks->push_back(blocks_.back());
  }
  if (o.use_linear_projection)
    proj_out_linear = register_module("proj_out", Linear(inner, cout));
  else
    proj_out_conv = register_module("proj_out", Conv2d(Conv2dOptions{inner, cout, 1, 1, 0}));
}

at::Tensor Transformer2DModelImpl::forward(const at::Tensor& x, const at::Tensor& context) {
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  auto h = norm(x);
  int64_t inner;
  if (proj_in_conv) {
    h = proj_in_conv(h);
    inner = h.size(1);
    h = h.permute({0, 2, 3, 1}).reshape({B, H * W, inner});  // [B, HW, inner]
  } else {
    inner = h.size(1);
    h = h.permute({0, 2, 3, 1}).reshape({B, H * W, inner});  // [B, HW, C]
    h = proj_in_linear(h);                                    // [B, HW, inner]
    inner = h.size(2);
  }
  for (auto& blk : blocks_) h = blk(h, context);
  if (proj_out_conv) {
    h = h.reshape({B, H, W, inner}).permute({0, 3, 1, 2}).contiguous();  // [B, inner, H, W]
    h = proj_out_conv(h);
  } else {
    h = proj_out_linear(h);                                                             // [B, HW, Cout]
    h = h.reshape({B, H, W, opt_.out_channels}).permute({0, 3, 1, 2}).contiguous();  // [B, Cout, H, W]
  }
  return h + x;
}

}  // namespace clipgen::blocks
