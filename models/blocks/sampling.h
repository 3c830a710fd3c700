// diffusers Downsample2D / Upsample2D (models/downsampling.py, models/upsampling.py).
#pragma once
#include <optional>
#include <vector>

#include "models/blocks/layers.h"

namespace clipgen::blocks {

struct Downsample2DOptions {
  int64_t channels = 0;
  bool use_conv = true;      // false → 2×2 average pooling
  int64_t out_channels = 0;  // 0 → channels
  int64_t padding = 1;       // 0 → pad (0,1,0,1) first, then conv stride 2 padding 0 (VAE encoder)
  int64_t kernel_size = 3;
  bool bias = true;
};

// Child "conv" (diffusers names it "conv" whatever its `name` argument is).
class Downsample2DImpl : public torch::nn::Module {
public:
  explicit Downsample2DImpl(const Downsample2DOptions& o);
  at::Tensor forward(const at::Tensor& x);

  Conv2d conv{nullptr};

private:
  Downsample2DOptions opt_;
};
TORCH_MODULE(Downsample2D);

struct Upsample2DOptions {
  int64_t channels = 0;
  bool use_conv = true;
  int64_t out_channels = 0;  // 0 → channels
  int64_t kernel_size = 3;
  int64_t padding = 1;
  bool bias = true;
  bool interpolate = true;
};

// Nearest-neighbour ×2 (or to `output_size`), then conv3×3. Child "conv".
class Upsample2DImpl : public torch::nn::Module {
public:
  explicit Upsample2DImpl(const Upsample2DOptions& o);
  // output_size: {H, W} to interpolate to instead of ×2 (diffusers' upsample_size).
  at::Tensor forward(const at::Tensor& x, const std::optional<std::vector<int64_t>>& output_size = std::nullopt);

  Conv2d conv{nullptr};

private:
  Upsample2DOptions opt_;
};
TORCH_MODULE(Upsample2D);

}  // namespace clipgen::blocks
