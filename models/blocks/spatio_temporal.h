// diffusers' video building blocks used by Stable Video Diffusion:
//   AlphaBlender, TemporalResnetBlock, SpatioTemporalResBlock   (models/resnet.py)
//   TemporalBasicTransformerBlock                                (models/attention.py)
//   TransformerSpatioTemporalModel                               (models/transformers/transformer_temporal.py)
// plus TemporalConv3d, the Conv3d with a (k, 1, 1) kernel these blocks use over the frame axis.
//
// Layouts: spatial layers see frames flattened into the batch, [B·F, C, H, W] (frame-major inside each
// video: row b·F + f). Temporal convolutions see [B, C, F, H, W]. `image_only_indicator` is [B, F]
// (1 = the frame is a still image, temporal path blended out; SVD passes zeros).
#pragma once
#include <string>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>

#include "models/blocks/attention.h"
#include "models/blocks/embeddings.h"
#include "models/blocks/layers.h"
#include "models/blocks/resnet.h"
#include "models/blocks/transformer_2d.h"

namespace clipgen::blocks {

// ---------------------------------------------------------------------------------------------------------
// AlphaBlender: out = α·spatial + (1 − α)·temporal, with
//   "learned_with_images": α = sigmoid(mix_factor) for video frames, 1 for frames flagged as images;
//   "learned":             α = sigmoid(mix_factor);
//   "fixed":               α = mix_factor (a buffer, not a parameter).
// switch_spatial_to_temporal_mix (temporal VAE decoder) replaces α by 1 − α.
struct AlphaBlenderOptions {
  double alpha = 0.5;                                  // initial mix_factor
  std::string merge_strategy = "learned_with_images";  // "learned", "fixed", "learned_with_images"
  bool switch_spatial_to_temporal_mix = false;
};

class AlphaBlenderImpl : public torch::nn::Module {
public:
  explicit AlphaBlenderImpl(const AlphaBlenderOptions& o);
  // The blend weight applied to x_spatial, shaped to broadcast against a tensor of `ndims` dims:
  // 5 → [B, 1, F, 1, 1] (for [B, C, F, H, W]); 3 → [B·F, 1, 1] (for [B·F, L, C]). "learned"/"fixed" give [1].
  at::Tensor alpha(const at::Tensor& image_only_indicator, int64_t ndims) const;
  at::Tensor forward(const at::Tensor& x_spatial, const at::Tensor& x_temporal,
                     const at::Tensor& image_only_indicator = {});
  const AlphaBlenderOptions& options() const { return opt_; }

  at::Tensor mix_factor;  // [1]

private:
  AlphaBlenderOptions opt_;
};
TORCH_MODULE(AlphaBlender);

// ---------------------------------------------------------------------------------------------------------
// nn.Conv3d with kernel (kt, 1, 1), stride 1, padding (kt/2, 0, 0): a convolution along frames only.
// Parameters "weight" [out, in, kt, 1, 1] and "bias" [out] as torch names them; honours EmptyInitGuard.
class TemporalConv3dImpl : public torch::nn::Module {
public:
  TemporalConv3dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_t = 3);
  at::Tensor forward(const at::Tensor& x);  // [B, in, F, H, W] → [B, out, F, H, W]

  at::Tensor weight, bias;

private:
  int64_t in_, out_, kt_;
};
TORCH_MODULE(TemporalConv3d);

// ---------------------------------------------------------------------------------------------------------
// TemporalResnetBlock: GroupNorm(32) → SiLU → Conv3d(3,1,1) → (+ per-frame time embedding) → GroupNorm(32)
// → SiLU → Conv3d(3,1,1), plus the input (1×1×1 conv_shortcut when channels change).
struct TemporalResnetBlockOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;     // 0 → in_channels
  int64_t temb_channels = 512;  // 0 → no time_emb_proj
  double eps = 1e-6;
};

class TemporalResnetBlockImpl : public torch::nn::Module {
public:
  explicit TemporalResnetBlockImpl(const TemporalResnetBlockOptions& o);
  // x [B, C, F, H, W]; temb [B, F, temb_channels] (undefined when there is no time_emb_proj)
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb = {});

  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  TemporalConv3d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};
  Linear time_emb_proj{nullptr};

private:
  TemporalResnetBlockOptions opt_;
};
TORCH_MODULE(TemporalResnetBlock);

// ---------------------------------------------------------------------------------------------------------
// SpatioTemporalResBlock ("VideoResBlock"): spatial_res_block (ResnetBlock2D on [B·F, …]), then
// temporal_res_block on the same features viewed as [B, C, F, H, W], blended by time_mixer.
struct SpatioTemporalResBlockOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;       // 0 → in_channels
  int64_t temb_channels = 512;    // 0 → no time embedding (temporal VAE decoder)
  double eps = 1e-6;              // spatial resnet GroupNorm eps
  double temporal_eps = -1;       // < 0 → eps
  double merge_factor = 0.5;
  std::string merge_strategy = "learned_with_images";
  bool switch_spatial_to_temporal_mix = false;
};

class SpatioTemporalResBlockImpl : public torch::nn::Module {
public:
  explicit SpatioTemporalResBlockImpl(const SpatioTemporalResBlockOptions& o);
  // x [B·F, Cin, H, W]; temb [B·F, temb_channels] or undefined; image_only_indicator [B, F].
  // Returns [B·F, Cout, H, W].
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb, const at::Tensor& image_only_indicator);

  ResnetBlock2D spatial_res_block{nullptr};
  TemporalResnetBlock temporal_res_block{nullptr};
  AlphaBlender time_mixer{nullptr};
};
TORCH_MODULE(SpatioTemporalResBlock);

// ---------------------------------------------------------------------------------------------------------
// TemporalBasicTransformerBlock: attention across the frames of each pixel.
// Tokens are regrouped [B·F, S, C] → [B·S, F, C]; then
//   x = ff_in(norm_in(x)) (+ x when dim == time_mix_inner_dim);  x += attn1(norm1(x));
//   x += attn2(norm2(x), context) (when cross_attention_dim);   x = ff(norm3(x)) (+ x when residual);
// and back to [B·F, S, C]. LayerNorm eps 1e-5, GEGLU feed-forwards.
struct TemporalBasicTransformerBlockOptions {
  int64_t dim = 0;
  int64_t time_mix_inner_dim = 0;
  int64_t num_attention_heads = 0;
  int64_t attention_head_dim = 0;
  int64_t cross_attention_dim = 0;  // 0 → no attn2
};

class TemporalBasicTransformerBlockImpl : public torch::nn::Module {
public:
  explicit TemporalBasicTransformerBlockImpl(const TemporalBasicTransformerBlockOptions& o);
  // x [B·F, S, dim]; context [B·S, Lk, cross_attention_dim] (row b·S + s belongs to token s of video b).
  at::Tensor forward(const at::Tensor& x, int64_t num_frames, const at::Tensor& context = {});

  torch::nn::LayerNorm norm_in{nullptr}, norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  FeedForward ff_in{nullptr}, ff{nullptr};
  Attention attn1{nullptr}, attn2{nullptr};

private:
  TemporalBasicTransformerBlockOptions opt_;
  bool is_res_ = true;
};
TORCH_MODULE(TemporalBasicTransformerBlock);

// ---------------------------------------------------------------------------------------------------------
// TransformerSpatioTemporalModel: GroupNorm(32, eps 1e-6) → tokens → proj_in (Linear) → for each layer:
// spatial BasicTransformerBlock; temporal block on (spatial output + frame-position embedding) with the
// *first frame's* encoder_hidden_states as context; AlphaBlender("learned_with_images") of the two →
// proj_out (Linear) → + residual.
struct TransformerSpatioTemporalModelOptions {
  int64_t num_attention_heads = 16;
  int64_t attention_head_dim = 88;
  int64_t in_channels = 320;
  int64_t num_layers = 1;
  int64_t cross_attention_dim = 0;  // 0 → self-attention only
};

class TransformerSpatioTemporalModelImpl : public torch::nn::Module {
public:
  explicit TransformerSpatioTemporalModelImpl(const TransformerSpatioTemporalModelOptions& o);
  // x [B·F, C, H, W]; encoder_hidden_states [B·F, L, cross_dim] (already repeated per frame);
  // image_only_indicator [B, F]. Returns [B·F, C, H, W].
  at::Tensor forward(const at::Tensor& x, const at::Tensor& encoder_hidden_states,
                     const at::Tensor& image_only_indicator);
  const TransformerSpatioTemporalModelOptions& options() const { return opt_; }

  torch::nn::GroupNorm norm{nullptr};
  Linear proj_in{nullptr}, proj_out{nullptr};
  torch::nn::ModuleList transformer_blocks{nullptr}, temporal_transformer_blocks{nullptr};
  TimestepEmbedding time_pos_embed{nullptr};
  Timesteps time_proj{nullptr};
  AlphaBlender time_mixer{nullptr};

private:
  TransformerSpatioTemporalModelOptions opt_;
  std::vector<BasicTransformerBlock> spatial_;
  std::vector<TemporalBasicTransformerBlock> temporal_;
};
TORCH_MODULE(TransformerSpatioTemporalModel);

}  // namespace clipgen::blocks
