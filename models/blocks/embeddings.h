// diffusers timestep embeddings (models/embeddings.py): the sinusoidal Timesteps projection and the
// TimestepEmbedding MLP (linear_1 → act → linear_2).
#pragma once
#include <string>

#include "models/blocks/layers.h"

namespace clipgen::blocks {

// get_timestep_embedding: t [N] (any dtype; computed from t.float()) → [N, dim].
// half = dim/2, f_i = exp(−ln(max_period)·i / (half − downscale_freq_shift)), emb = [sin(t·f), cos(t·f)]·scale,
// swapped to [cos, sin] when flip_sin_to_cos; zero-padded by one column when dim is odd.
at::Tensor timestep_embedding(const at::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos,
                              double downscale_freq_shift, double scale = 1.0, double max_period = 10000.0);

struct TimestepsOptions {
  int64_t num_channels = 0;
  bool flip_sin_to_cos = true;
  double downscale_freq_shift = 0.0;
};

// Parameter-free module (diffusers `Timesteps`), registered so hooks/intermediates can name it.
class TimestepsImpl : public torch::nn::Module {
public:
  explicit TimestepsImpl(const TimestepsOptions& o) : opt_(o) {}
  at::Tensor forward(const at::Tensor& timesteps) const;
  const TimestepsOptions& options() const { return opt_; }

private:
  TimestepsOptions opt_;
};
TORCH_MODULE(Timesteps);

struct TimestepEmbeddingOptions {
  int64_t in_channels = 0;
  int64_t time_embed_dim = 0;
  std::string act_fn = "silu";
  int64_t out_dim = 0;            // 0 → time_embed_dim
  int64_t cond_proj_dim = 0;      // 0 → none; else cond_proj Linear(cond_proj_dim, in_channels, bias=false)
  std::string post_act_fn;        // "" → none
};

class TimestepEmbeddingImpl : public torch::nn::Module {
public:
  explicit TimestepEmbeddingImpl(const TimestepEmbeddingOptions& o);
  // sample [B, in_channels] (+ condition [B, cond_proj_dim] when cond_proj exists) → [B, out_dim]
  at::Tensor forward(const at::Tensor& sample, const at::Tensor& condition = {});

  Linear linear_1{nullptr}, linear_2{nullptr}, cond_proj{nullptr};

private:
  TimestepEmbeddingOptions opt_;
};
TORCH_MODULE(TimestepEmbedding);

}  // namespace clipgen::blocks
