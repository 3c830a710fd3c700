// diffusers AutoencoderTiny (models/autoencoders/autoencoder_tiny.py, vae.py EncoderTiny/DecoderTiny):
// the TAESD architecture for fast previews. encoder.layers / decoder.layers are flat Sequential-style lists
// (convs, AutoencoderTinyBlocks, upsampling and activation layers without parameters).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/nn/modules/container/modulelist.h>

#include "models/blocks/layers.h"

namespace clipgen {

struct AutoencoderTinyConfig {
  int64_t in_channels = 3, out_channels = 3, latent_channels = 4;
  std::vector<int64_t> encoder_block_out_channels = {64, 64, 64, 64};
  std::vector<int64_t> decoder_block_out_channels = {64, 64, 64, 64};
  std::vector<int64_t> num_encoder_blocks = {1, 3, 3, 3};
  std::vector<int64_t> num_decoder_blocks = {3, 3, 3, 1};
  std::string act_fn = "relu";
  double latent_magnitude = 3.0, latent_shift = 0.5;
  double scaling_factor = 1.0;
  int64_t upsampling_scaling_factor = 2;
  bool force_upcast = false;

  // Reads a diffusers config.json (the redundant block_out_channels key is ignored, as diffusers does).
  static AutoencoderTinyConfig from_json(const nlohmann::json& j, const std::string& source = "config.json");
};

// conv = [conv3×3, act, conv3×3, act, conv3×3]; skip = 1×1 conv (no bias) when channels change;
// out = relu(conv(x) + skip(x)).
class AutoencoderTinyBlockImpl : public torch::nn::Module {
public:
  AutoencoderTinyBlockImpl(int64_t in_channels, int64_t out_channels, std::string act_fn);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::ModuleList conv{nullptr};
  blocks::Conv2d skip{nullptr};

private:
  std::vector<blocks::Conv2d> convs_;
  std::string act_;
};
TORCH_MODULE(AutoencoderTinyBlock);

// A flat layer list: each entry is a conv, a tiny block, or a parameter-free op (activation, upsample).
class TinyLayerStackImpl : public torch::nn::Module {
public:
  torch::nn::ModuleList layers{nullptr};
  at::Tensor run(const at::Tensor& x);

protected:
  struct Layer {
    enum Kind { Conv, Block, Act, Upsample } kind;
    blocks::Conv2d conv{nullptr};
    AutoencoderTinyBlock block{nullptr};
  };
  void add(Layer l, std::shared_ptr<torch::nn::Module> m);
  std::vector<Layer> list_;
  std::string act_ = "relu";
  int64_t upsample_ = 2;
};

class EncoderTinyImpl : public TinyLayerStackImpl {
public:
  explicit EncoderTinyImpl(const AutoencoderTinyConfig& c);
  at::Tensor forward(const at::Tensor& x);  // image in [-1, 1] → latents (x.add(1).div(2) first)
};
TORCH_MODULE(EncoderTiny);

class DecoderTinyImpl : public TinyLayerStackImpl {
public:
  explicit DecoderTinyImpl(const AutoencoderTinyConfig& c);
  at::Tensor forward(const at::Tensor& z);  // tanh(z/3)·3 → layers → x·2 − 1
};
TORCH_MODULE(DecoderTiny);

class AutoencoderTinyImpl : public torch::nn::Module {
public:
  explicit AutoencoderTinyImpl(const AutoencoderTinyConfig& c);
  at::Tensor encode(const at::Tensor& image);     // [B, 3, H, W] → [B, 4, H/8, W/8]
  at::Tensor decode(const at::Tensor& latents);   // → [B, 3, 8h, 8w]
  // x / (2·latent_magnitude) + latent_shift, clamped to [0, 1] (diffusers scale_latents).
  at::Tensor scale_latents(const at::Tensor& x) const;
  // (x − latent_shift) · 2·latent_magnitude (diffusers unscale_latents).
  at::Tensor unscale_latents(const at::Tensor& x) const;
  // taesd(image).sample: encode → scale → uint8 quantisation (round(x·255)) → /255 → unscale → decode.
  at::Tensor forward(const at::Tensor& image);
  const AutoencoderTinyConfig& config() const { return cfg_; }

  EncoderTiny encoder{nullptr};
  DecoderTiny decoder{nullptr};

private:
  AutoencoderTinyConfig cfg_;
};
TORCH_MODULE(AutoencoderTiny);

AutoencoderTiny load_autoencoder_tiny(const std::filesystem::path& folder);

}  // namespace clipgen
