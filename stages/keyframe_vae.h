// A keyframe model's VAE replaced by another one (the shot's `models.vae`, docs/shot-schema.md#models) —
// typically the fine-tuned sd-vae-ft-mse decoder for SD 1.x models, as diffusers does with
// `StableDiffusionPipeline.from_pretrained(model, vae=AutoencoderKL...)` and A1111/ComfyUI with a VAE file.
#pragma once
#include <filesystem>
#include <optional>

#include "models/autoencoder_kl.h"
#include "stages/keyframe.h"

namespace clipgen::stages {

// Loads an AutoencoderKL from any of:
//  - a diffusers AutoencoderKL folder (config.json + diffusion_pytorch_model.safetensors);
//  - a single-file checkpoint in the LDM/SGM layout: only its `first_stage_model.*` tensors are mapped
//    and materialized (models/io/single_file.h component selection), with the family's VAE settings;
//  - a standalone VAE .safetensors in the LDM layout (encoder.down.*, decoder.up.*, quant_conv.*, ...);
//  - a standalone VAE .safetensors with diffusers names (encoder.down_blocks.*, ...).
// A standalone file carries no scaling factor: `standalone_scaling_factor` is used for it (the keyframe
// model's, as A1111 and ComfyUI do); without it diffusers' default 0.18215. Errors name the path.
AutoencoderKL load_vae(const std::filesystem::path& path, std::optional<double> standalone_scaling_factor = std::nullopt);

// Replaces `model`'s VAE with the one at `path` (the VAE's own scaling_factor is then used, as a diffusers
// pipeline given vae= does). The VAE must fit the model: the UNet's latent channels, the same downscale
// factor, and the same scaling factor (a different one means another latent space, e.g. an SDXL VAE named
// for an SD 1.x model); otherwise a ModelLoadError names both the VAE and the model.
void replace_vae(SDModel& model, const std::filesystem::path& path);

}  // namespace clipgen::stages
