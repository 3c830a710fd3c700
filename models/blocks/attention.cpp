#include "models/blocks/attention.h"

#include <cmath>

#include <torch/torch.h>

namespace clipgen::blocks {

AttentionImpl::AttentionImpl(const AttentionModuleOptions& o) : opt_(o) {
  if (opt_.cross_attention_dim <= 0) opt_.cross_attention_dim = opt_.query_dim;
  if (opt_.out_dim <= 0) opt_.out_dim = opt_.query_dim;
  const int64_t inner = opt_.heads * opt_.dim_head;
  if (opt_.norm_num_groups > 0)
    group_norm = register_module(
        "group_norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(opt_.norm_num_groups, opt_.query_dim).eps(opt_.eps)));
  to_q = register_module("to_q", Linear(opt_.query_dim, inner, opt_.bias));
  to_k = register_module("to_k", Linear(opt_.cross_attention_dim, inner, opt_.bias));
  to_v = register_module("to_v", Linear(opt_.cross_attention_dim, inner, opt_.bias));
  out_proj_ = Linear(inner, opt_.out_dim, opt_.out_bias);
  to_out = register_module("to_out", torch::nn::ModuleList(out_proj_));
}

at::Tensor AttentionImpl::forward(const at::Tensor& hidden, const at::Tensor& context,
                                  const std::optional<at::Tensor>& mask) {
  const auto& residual = hidden;
  const bool spatial = hidden.dim() == 4;
  int64_t B = hidden.size(0), C = 0, H = 0, W = 0;
  at::Tensor x = hidden;
  if (spatial) {
    C = hidden.size(1), H = hidden.size(2), W = hidden.size(3);
    x = hidden.view({B, C, H * W}).transpose(1, 2);  // [B, HW, C]
  }
  if (group_norm) x = group_norm(x.transpose(1, 2)).transpose(1, 2);  // GroupNorm over channels of [B, C, L]
  const auto& ctx = context.defined() ? context : x;
  auto q = split_heads(to_q(x), opt_.heads);    // [B, heads, L, dim_head]
  auto k = split_heads(to_k(ctx), opt_.heads);  // [B, heads, Lk, dim_head]
  auto v = split_heads(to_v(ctx), opt_.heads);  // [B, heads, Lk, dim_head]
  AttentionOptions ao;
  ao.scale = opt_.scale_qk ? 1.0 / std::sqrt(static_cast<double>(opt_.dim_head)) : 1.0;
  ao.upcast = opt_.upcast_attention || opt_.upcast_softmax;
  ao.max_chunk_bytes = max_chunk_bytes;
  // QKᵀ and PV: 2 · 2·B·heads·L·Lk·dim_head
  if (FlopCounter::enabled()) FlopCounter::add(4.0 * q.size(0) * q.size(1) * q.size(2) * k.size(2) * q.size(3));
  auto o = merge_heads(attention(q, k, v, mask, ao));  // [B, L, heads·dim_head]
  o = out_proj_(o);                                    // [B, L, out_dim]
  if (spatial) o = o.transpose(1, 2).reshape({B, opt_.out_dim, H, W});  // [B, C, H, W]
  if (opt_.residual_connection) o = o + residual;
  if (opt_.rescale_output_factor != 1.0) o = o / opt_.rescale_output_factor;
  return o;
}

}  // namespace clipgen::blocks
