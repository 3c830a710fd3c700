// diffusers AutoencoderKLTemporalDecoder (models/autoencoders/autoencoder_kl_temporal_decoder.py): the Stable
// Video Diffusion VAE. The encoder is AutoencoderKL's (per image, frames in the batch); the TemporalDecoder
// mixes frames with temporal resnets (Conv3d (3,1,1)) and a final time_conv_out, so the frames decoded in
// one call influence each other. Like AutoencoderKL, the model never applies scaling_factor: pipelines do.
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>

#include "models/autoencoder_kl.h"  // DiagonalGaussian
#include "models/blocks/spatio_temporal.h"
#include "models/blocks/spatio_temporal_blocks.h"
#include "models/vae.h"

namespace clipgen {

struct AutoencoderKLTemporalDecoderConfig {
  int64_t in_channels = 3, out_channels = 3, latent_channels = 4;
  std::vector<int64_t> block_out_channels = {64};
  int64_t layers_per_block = 1;
  int64_t sample_size = 32;   // informational
  double scaling_factor = 0.18215;
  bool force_upcast = true;   // informational: the VAE should run in float32

  // Reads a diffusers config.json; unsupported values or unknown keys throw UnsupportedError naming the key.
  static AutoencoderKLTemporalDecoderConfig from_json(const nlohmann::json& j,
                                                      const std::string& source = "config.json");
};

// TemporalDecoder: conv_in → MidBlockTemporalDecoder → UpBlockTemporalDecoder × levels → GroupNorm(32, 1e-6)
// → SiLU → conv_out → time_conv_out (Conv3d (3,1,1) over the frames of each video).
class TemporalDecoderImpl : public torch::nn::Module {
public:
  TemporalDecoderImpl(int64_t in_channels, int64_t out_channels, const std::vector<int64_t>& block_out_channels,
                      int64_t layers_per_block);
  // z [B·F, in, h, w] (B videos of num_frames frames, frame-major) → [B·F, out, h·2^(n−1), w·2^(n−1)].
  at::Tensor forward(const at::Tensor& z, int64_t num_frames);

  blocks::Conv2d conv_in{nullptr}, conv_out{nullptr};
  blocks::MidBlockTemporalDecoder mid_block{nullptr};
  torch::nn::ModuleList up_blocks{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
  blocks::TemporalConv3d time_conv_out{nullptr};

private:
  std::vector<blocks::UpBlockTemporalDecoder> up_;
};
TORCH_MODULE(TemporalDecoder);

class AutoencoderKLTemporalDecoderImpl : public torch::nn::Module {
public:
  explicit AutoencoderKLTemporalDecoderImpl(const AutoencoderKLTemporalDecoderConfig& cfg);

  // image [N, 3, H, W] in [-1, 1] (frames or images in the batch) → posterior over [N, latent, H/8, W/8].
  DiagonalGaussian encode(const at::Tensor& image);
  // latents [B·num_frames, latent, h, w] (already divided by scaling_factor) → [B·num_frames, 3, 8h, 8w].
  // All frames of one call are mixed by the temporal layers.
  at::Tensor decode(const at::Tensor& latents, int64_t num_frames);
  // The SVD pipeline's decode_latents loop: latents [N, latent, h, w] (unscaled, N = B·num_frames) decoded
  // decode_chunk frames at a time, each chunk as one video of its own length (the last may be shorter), so
  // memory is bounded by decode_chunk whatever N is. Results are written into one preallocated
  // [N, 3, 8h, 8w] tensor. Not equal to decode(latents, N) unless decode_chunk ≥ N (frames only mix
  // within a chunk) — but equal to diffusers' pipeline with the same decode_chunk_size.
  at::Tensor decode_chunked(const at::Tensor& latents, int64_t num_frames, int64_t decode_chunk);
  // Streaming form: calls sink(first_frame_index, frames [n, 3, 8h, 8w]) per chunk, keeping no output.
  void decode_chunked(const at::Tensor& latents, int64_t decode_chunk,
                      const std::function<void(int64_t first, const at::Tensor& frames)>& sink);
  // vae(sample, num_frames=...).sample with the posterior mode.
  at::Tensor forward(const at::Tensor& image, int64_t num_frames);

  const AutoencoderKLTemporalDecoderConfig& config() const { return cfg_; }
  double scaling_factor() const { return cfg_.scaling_factor; }
  int64_t downscale_factor() const { return int64_t{1} << (cfg_.block_out_channels.size() - 1); }

  Encoder encoder{nullptr};
  TemporalDecoder decoder{nullptr};
  blocks::Conv2d quant_conv{nullptr};

private:
  AutoencoderKLTemporalDecoderConfig cfg_;
};
TORCH_MODULE(AutoencoderKLTemporalDecoder);

// Reads folder/config.json, builds the model without initialising it and loads its weights.
AutoencoderKLTemporalDecoder load_autoencoder_kl_temporal_decoder(const std::filesystem::path& folder);

}  // namespace clipgen
