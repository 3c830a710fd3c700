// Scaled dot-product attention with bounded memory.
// On LibTorch >= 2.0 this is at::scaled_dot_product_attention. On 1.13 it is computed in query chunks so
// the attention-probability buffer never exceeds `max_chunk_bytes`, instead of growing with tokens².
#pragma once
#include <optional>

#include <ATen/core/Tensor.h>

namespace clipgen::blocks {

struct AttentionOptions {
  std::optional<double> scale;        // default head_dim^-0.5
  bool causal = false;                // causal mask (text encoders)
  bool upcast = false;                // compute QKᵀ/softmax in float32 for half inputs
  int64_t max_chunk_bytes = 256ll << 20;  // 1.13 path: bound on the [B,H,chunk,Lk] score buffer
  bool force_chunked = false;         // testing: take the 1.13 path even on 2.x
};

// q [B, H, Lq, D], k/v [B, H, Lk, D] → [B, H, Lq, D]. `mask` (optional) is additive, broadcastable to
// [B, H, Lq, Lk].
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const std::optional<at::Tensor>& mask = std::nullopt, const AttentionOptions& opt = {});

// [B, L, H*D] → [B, H, L, D]
at::Tensor split_heads(const at::Tensor& x, int64_t heads);
// [B, H, L, D] → [B, L, H*D]
at::Tensor merge_heads(const at::Tensor& x);

}  // namespace clipgen::blocks
