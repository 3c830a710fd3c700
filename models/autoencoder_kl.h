// diffusers AutoencoderKL (models/autoencoders/autoencoder_kl.py): the SD / SDXL VAE.
// encode → DiagonalGaussian posterior (mean, logvar clamped to [-30, 20], std); decode (post_quant_conv +
// Decoder), optionally tiled for large rasters (diffusers' approximate tiling, or an exact tiling) or
// sliced per batch row. The model never applies scaling_factor / shift_factor: pipelines do, with
// scale_latents() / unscale_latents().
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Generator.h>
#include <nlohmann/json_fwd.hpp>

#include "models/vae.h"

namespace clipgen {

struct AutoencoderKLConfig {
  int64_t in_channels = 3, out_channels = 3, latent_channels = 4;
  std::vector<int64_t> block_out_channels = {64};
  int64_t layers_per_block = 1;
  int64_t norm_num_groups = 32;
  std::string act_fn = "silu";
  int64_t sample_size = 32;              // tiled decode: tile size in pixels
  double scaling_factor = 0.18215;
  std::optional<double> shift_factor;    // SD3/Flux-style VAEs; absent in SD/SDXL
  bool force_upcast = true;
  bool use_quant_conv = true, use_post_quant_conv = true;
  bool mid_block_add_attention = true;

  // Reads a diffusers config.json. Unsupported values (other block types, …) throw UnsupportedError
  // naming the key and `source`.
  static AutoencoderKLConfig from_json(const nlohmann::json& j, const std::string& source = "config.json");
};

// The encoder's posterior. moments = quant_conv output [B, 2·latent, h, w] = [mean | logvar] on dim 1.
struct DiagonalGaussian {
  at::Tensor moments, mean, logvar, std;
  at::Tensor mode() const { return mean; }
  at::Tensor sample(const at::Tensor& noise) const;  // mean + std · noise
  at::Tensor sample(at::Generator& gen) const;       // noise drawn on CPU from gen (as diffusers' randn_tensor)
};

struct TiledDecodeOptions {
  int64_t tile_latent_size = 0;     // 0 → sample_size / 2^(levels−1) (diffusers' tile_latent_min_size)
  double overlap_factor = 0.25;     // diffusers' tile_overlap_factor
};

// decode_tiled_exact(): tiles that reproduce decode() (see docs/vae-decode.md).
struct ExactTiledDecodeOptions {
  int64_t tile_latent_size = 64;    // side of a tile's core in latents (64 → 512 px for SD/SDXL)
  // Latents of context around each core. −1 → decoder_halo_latents(), the receptive field of everything
  // after the mid-block (cores then exact). Smaller values are for tests and cut the receptive field.
  int64_t halo_latents = -1;
  // true: every GroupNorm after the mid-block normalises with the statistics of the whole image (as
  // decode() does), gathered over the tile cores. false: each tile uses its own statistics (what
  // independent tile decodes do; for comparison only, not exact).
  bool global_group_norm = true;
  // false: all tiles advance together from one GroupNorm to the next, each one's activations kept
  // (cropped to core + what later convs still need): one decoder pass, peak memory ≈ the widest
  // full-raster state (SD: ≈ 1.5 KiB per output pixel, about half of decode()'s). true: only the
  // mid-block output, the output and the statistics are kept; each GroupNorm's statistics are gathered
  // by re-running every tile up to it: memory bounded by one tile, compute ≈ 11 passes of the decoder
  // after its mid-block for SD (25 GroupNorms; estimated from conv multiply-adds).
  bool recompute = false;
};

class AutoencoderKLImpl : public torch::nn::Module {
public:
  explicit AutoencoderKLImpl(const AutoencoderKLConfig& cfg);

  DiagonalGaussian encode(const at::Tensor& image);  // image [B, 3, H, W] in [-1, 1]
  at::Tensor decode(const at::Tensor& latents);      // latents [B, 4, h, w] (already unscaled) → [B, 3, 8h, 8w]
  // Decodes one batch row at a time (identical results, lower peak memory).
  at::Tensor decode_sliced(const at::Tensor& latents);
  // diffusers' tiled_decode: overlapping latent tiles decoded separately, seams blended linearly over
  // overlap_factor·tile pixels. Not identical to decode(): GroupNorm statistics and mid-block attention
  // are per tile (see tests/parity/test_autoencoder_kl.cpp for the measured difference). For delivery use
  // decode_tiled_exact.
  at::Tensor tiled_decode(const at::Tensor& latents, const TiledDecodeOptions& opt = {});
  // Tiled decode equal to decode() up to float rounding (no seams, no blending). post_quant_conv,
  // conv_in and the mid-block (with its attention, memory-bounded) run on the whole latent; the rest of
  // the decoder runs per tile, each tile's core widened by a halo covering the convolutions' receptive
  // field, and every GroupNorm uses whole-image statistics (per batch row, as GroupNorm does), summed
  // over the cores in double. Batch rows (frames) are decoded one at a time. Cores are stitched into
  // the output. Runs without autograd. See ExactTiledDecodeOptions for the memory / compute choice and
  // docs/vae-decode.md for the stated tolerance and peak memory.
  at::Tensor decode_tiled_exact(const at::Tensor& latents, const ExactTiledDecodeOptions& opt = {});
  // Latent halo decode_tiled_exact needs for exact cores (13 for the SD/SDXL decoder, 9 for a decoder
  // with two resnets per block), from the decoder's conv kernels and upsamplers.
  int64_t decoder_halo_latents() const;
  // vae(image, sample_posterior).sample: decode(posterior.mode()) or decode(posterior.sample(gen)).
  at::Tensor forward(const at::Tensor& image, bool sample_posterior = false, at::Generator* gen = nullptr);

  const AutoencoderKLConfig& config() const { return cfg_; }
  double scaling_factor() const { return cfg_.scaling_factor; }
  double shift_factor() const { return cfg_.shift_factor.value_or(0.0); }
  int64_t downscale_factor() const { return int64_t{1} << (cfg_.block_out_channels.size() - 1); }
  // (z − shift) · scaling_factor: encoder latents → diffusion latents.
  at::Tensor scale_latents(const at::Tensor& z) const;
  // z / scaling_factor + shift: diffusion latents → decoder input.
  at::Tensor unscale_latents(const at::Tensor& z) const;

  Encoder encoder{nullptr};
  Decoder decoder{nullptr};
  blocks::Conv2d quant_conv{nullptr}, post_quant_conv{nullptr};

private:
  AutoencoderKLConfig cfg_;
};
TORCH_MODULE(AutoencoderKL);

// Reads folder/config.json, builds the model without initialising it and loads its weights
// (legacy attention names renamed). Errors name the folder and tensor.
AutoencoderKL load_autoencoder_kl(const std::filesystem::path& folder);

}  // namespace clipgen
