// diffusers ResnetBlock2D (models/resnet.py): GroupNorm → act → conv3×3 → (+ time embedding) → GroupNorm →
// act → conv3×3, plus a shortcut (1×1 conv when channels change), divided by output_scale_factor.
#pragma once
#include <optional>
#include <string>

#include <torch/nn/modules/normalization.h>

#include "models/blocks/layers.h"

namespace clipgen::blocks {

struct ResnetBlock2DOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;             // 0 → in_channels
  int64_t temb_channels = 512;          // 0 → no time_emb_proj (VAE blocks)
  int64_t groups = 32;
  int64_t groups_out = 0;               // 0 → groups
  double eps = 1e-6;
  std::string non_linearity = "swish";  // "swish"/"silu", "gelu", "relu", "mish"
  std::string time_embedding_norm = "default";  // "default" or "scale_shift"
  bool skip_time_act = false;
  double output_scale_factor = 1.0;
  std::optional<bool> use_in_shortcut;  // default: in != out channels
  bool conv_shortcut = false;           // 3×3 shortcut conv instead of 1×1 (rare)
  bool conv_shortcut_bias = true;
  int64_t conv_2d_out_channels = 0;     // 0 → out_channels
};

class ResnetBlock2DImpl : public torch::nn::Module {
public:
  explicit ResnetBlock2DImpl(const ResnetBlock2DOptions& o);
  // x [B, Cin, H, W], temb [B, temb_channels] (undefined when the block has no time_emb_proj)
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb = {});
  const ResnetBlock2DOptions& options() const { return opt_; }

  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  Conv2d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};
  Linear time_emb_proj{nullptr};

private:
  ResnetBlock2DOptions opt_;
};
TORCH_MODULE(ResnetBlock2D);

}  // namespace clipgen::blocks
