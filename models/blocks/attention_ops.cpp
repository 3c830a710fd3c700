#include "models/blocks/attention_ops.h"

#include <cmath>

#include <torch/torch.h>
#include <torch/version.h>

namespace clipgen::blocks {

at::Tensor split_heads(const at::Tensor& x, int64_t heads) {
  auto b = x.size(0), l = x.size(1), c = x.size(2);
  return x.view({b, l, heads, c / heads}).transpose(1, 2);  // [B, H, L, D]
}

at::Tensor merge_heads(const at::Tensor& x) {
  auto b = x.size(0), h = x.size(1), l = x.size(2), d = x.size(3);
  return x.transpose(1, 2).reshape({b, l, h * d});  // [B, L, H*D]
}

static at::Tensor causal_mask(int64_t lq, int64_t lk, int64_t q_offset, const at::TensorOptions& o) {
  // [chunk, Lk] additive mask: -inf above the diagonal.
  auto rows = torch::arange(q_offset, q_offset + lq, o.dtype(torch::kLong)).unsqueeze(1);
  auto cols = torch::arange(lk, o.dtype(torch::kLong)).unsqueeze(0);
  auto m = torch::zeros({lq, lk}, o);
  return m.masked_fill(cols > rows, -std::numeric_limits<float>::infinity());
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const std::optional<at::Tensor>& mask, const AttentionOptions& opt) {
  const int64_t B = q.size(0), H = q.size(1), Lq = q.size(2), D = q.size(3), Lk = k.size(2);
  const double scale = opt.scale.value_or(1.0 / std::sqrt(static_cast<double>(D)));
#if TORCH_VERSION_MAJOR >= 2
  if (!opt.force_chunked && !opt.upcast) {
    // SDPA wants a boolean mask or one of the query's dtype. Only a defined tensor is passed to its
    // optional mask argument: c10::optional is not std::optional before LibTorch 2.4, and `{}` is
    // "no mask" in every 2.x.
    at::Tensor m;
    if (mask) m = mask->to(q.scalar_type());
    if (opt.causal) {
      auto cm = causal_mask(Lq, Lk, 0, q.options());
      m = m.defined() ? m + cm : cm;
    }
#if TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 1
    // `scale` is an argument from 2.1 on.
    if (m.defined()) return at::scaled_dot_product_attention(q, k, v, m, 0.0, false, scale);
    return at::scaled_dot_product_attention(q, k, v, {}, 0.0, false, scale);
#else
    // 2.0 always scales by head_dim^-0.5: fold the requested scale into q.
    const auto qs = q * (scale * std::sqrt(static_cast<double>(D)));
    if (m.defined()) return at::scaled_dot_product_attention(qs, k, v, m, 0.0, false);
    return at::scaled_dot_product_attention(qs, k, v, {}, 0.0, false);
#endif
  }
#endif
  const bool up = opt.upcast && q.scalar_type() != torch::kFloat;
  auto qs = up ? q.to(torch::kFloat) : q;
  auto ks = up ? k.to(torch::kFloat) : k;
  auto vs = up ? v.to(torch::kFloat) : v;
  const int64_t elem = qs.element_size();
  int64_t chunk = std::max<int64_t>(1, opt.max_chunk_bytes / std::max<int64_t>(1, B * H * Lk * elem));
  chunk = std::min(chunk, Lq);
  auto kt = ks.transpose(-1, -2);  // [B, H, D, Lk]
  auto out = torch::empty({B, H, Lq, D}, vs.options());
  for (int64_t s = 0; s < Lq; s += chunk) {
    const int64_t e = std::min(Lq, s + chunk);
    auto qc = qs.slice(2, s, e);
    // scores = scale * q kᵀ (+ mask): [B, H, chunk, Lk]
    at::Tensor scores;
    if (mask) {
      auto mc = mask->dim() >= 2 && mask->size(-2) == Lq ? mask->slice(-2, s, e) : *mask;
      scores = torch::baddbmm(mc.expand({B, H, e - s, Lk}).reshape({B * H, e - s, Lk}).to(qc.scalar_type()),
                              qc.reshape({B * H, e - s, D}), kt.reshape({B * H, D, Lk}), 1.0, scale)
                   .view({B, H, e - s, Lk});
    } else {
      scores = torch::matmul(qc, kt).mul_(scale);
    }
    if (opt.causal) scores.add_(causal_mask(e - s, Lk, s, scores.options()));
    scores = scores.softmax(-1);
    out.slice(2, s, e).copy_(torch::matmul(scores, vs));
  }
  return up ? out.to(q.scalar_type()) : out;
}

}  // namespace clipgen::blocks
