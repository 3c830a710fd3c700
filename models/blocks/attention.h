// diffusers `Attention` (models/attention_processor.py) with the classic AttnProcessor semantics:
// optional GroupNorm over channels, to_q / to_k / to_v projections, multi-head scaled dot-product
// attention (memory-bounded, see attention_ops.h), to_out.0 projection, optional residual, division by
// rescale_output_factor. 4-D inputs [B, C, H, W] are flattened to tokens [B, H·W, C] and restored.
#pragma once
#include <optional>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>

#include "models/blocks/attention_ops.h"
#include "models/blocks/layers.h"

namespace clipgen::blocks {

struct AttentionModuleOptions {
  int64_t query_dim = 0;
  int64_t cross_attention_dim = 0;  // 0 → query_dim (self-attention)
  int64_t heads = 8;
  int64_t dim_head = 64;
  int64_t out_dim = 0;              // 0 → query_dim
  bool bias = false;                // bias of to_q/to_k/to_v
  bool out_bias = true;
  bool upcast_attention = false;    // QKᵀ in float32 for half inputs
  bool upcast_softmax = false;      // (softmax is computed in the input dtype's accumulation anyway)
  int64_t norm_num_groups = 0;      // > 0 → group_norm child (GroupNorm(groups, query_dim, eps))
  double eps = 1e-5;
  bool residual_connection = false;
  double rescale_output_factor = 1.0;
  bool scale_qk = true;             // scale = dim_head^-0.5, else 1
};

class AttentionImpl : public torch::nn::Module {
public:
  explicit AttentionImpl(const AttentionModuleOptions& o);
  // hidden [B, L, query_dim] or [B, C, H, W]; context [B, Lk, cross_attention_dim] (undefined → self);
  // mask additive, broadcastable to [B, heads, L, Lk].
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& context = {},
                     const std::optional<at::Tensor>& mask = std::nullopt);
  const AttentionModuleOptions& options() const { return opt_; }

  torch::nn::GroupNorm group_norm{nullptr};
  Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out{nullptr};  // [0] = Linear (diffusers' [1] is Dropout, no parameters)

  // Bound on the attention score buffer (bytes) for LibTorch 1.13's chunked path.
  int64_t max_chunk_bytes = 256ll << 20;

private:
  AttentionModuleOptions opt_;
  Linear out_proj_{nullptr};
};
TORCH_MODULE(Attention);

}  // namespace clipgen::blocks
