// Temporal stage: image-to-video with a Stable Video Diffusion model (SVD, SVD-XT), as diffusers'
// StableVideoDiffusionPipeline does it (0.27.2), one model run (a *segment*) per call:
//   1. CLIP image embeddings of the conditioning image (SVD's anti-aliased resize to 224, CLIP
//      normalisation), [zeros; embeds] for classifier-free guidance;
//   2. noise augmentation: image (in [−1, 1] at the output size) + noise_aug_strength · randn;
//   3. image latents = vae.encode(augmented).latent_dist.mode() (not scaled), [zeros; latents] for CFG,
//      repeated over the frames and concatenated to the noisy latents on the channel axis;
//   4. added_time_ids = [fps − 1, motion_bucket_id, noise_aug_strength];
//   5. EDM-style Euler (v-prediction, Karras σ, c_noise = 0.25·ln σ timesteps), guidance ramping linearly
//      from min_guidance to max_guidance across the frames;
//   6. decode: latents / scaling_factor, frames flattened into the batch, decode_chunk frames per VAE call.
//
// Randomness: one CPU generator per segment, seeded with SegmentRequest::seed (for a shot: segment_seed()
// of stages/segments.h, docs/seeds.md), drawn in diffusers' order — noise augmentation, initial latents,
// then the scheduler's own draws — so a seed gives exactly what diffusers gives on CPU with
// generator=torch.Generator().manual_seed(seed).
#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "models/autoencoder_kl_temporal_decoder.h"
#include "models/clip_image_preprocess.h"
#include "models/clip_vision_model.h"
#include "models/io/diffusers_folder.h"
#include "models/schedulers/scheduler.h"
#include "models/unet_spatio_temporal_condition.h"

namespace clipgen::stages {

// The components of one SVD model, loaded once and reused for every segment.
struct SVDModel {
  std::string source;  // the folder it was loaded from (for messages and reports)
  CLIPVisionModelWithProjection image_encoder{nullptr};
  CLIPImageNormalization feature_extractor;  // mean/std/size of the pipeline's CLIPImageProcessor
  AutoencoderKLTemporalDecoder vae{nullptr};
  UNetSpatioTemporalConditionModel unet{nullptr};
  schedulers::SchedulerConfig scheduler_config;

  // Frames per run the model was trained for (UNet config num_frames: 14 SVD, 25 SVD-XT).
  int64_t native_frames() const { return unet->config().num_frames; }
  int64_t vae_scale_factor() const { return vae->downscale_factor(); }
  c10::Device device() const;
  // Moves the model and casts its weights: image encoder and UNet to `dtype`, the temporal VAE too unless
  // `dtype` is fp16 and its config says force_upcast (as SDModel::to). Latents and the scheduler stay
  // float32.
  void to(c10::Device device, c10::ScalarType dtype);
  c10::ScalarType dtype() const;      // the UNet's (and image encoder's) weights
  c10::ScalarType vae_dtype() const;  // the temporal VAE's weights
};

// Where each component lives (diffusers component folders; scheduler_config is a file).
struct SVDComponentPaths {
  std::filesystem::path image_encoder, feature_extractor, vae, unet, scheduler_config;
};

// Loads a diffusers pipeline folder (model_index.json with StableVideoDiffusionPipeline). Errors: not a
// pipeline folder, a pipeline class that is not image-to-video (e.g. a Stable Diffusion text-to-image
// folder), a missing component — each naming the folder and what was found.
SVDModel load_svd_pipeline(const std::filesystem::path& root);
// The checks load_svd_pipeline makes before reading any weights: model_index.json present, pipeline
// class StableVideoDiffusionPipeline, every component there with the class the stage needs.
io::PipelineIndex read_svd_pipeline_index(const std::filesystem::path& root);
// Loads from explicit component folders (e.g. the fixtures' components.json layout). `feature_extractor`
// is a folder with preprocessor_config.json; empty → CLIP's default mean/std at 224.
SVDModel load_svd_components(const SVDComponentPaths& paths, const std::string& source);

struct SegmentRequest {
  // Conditioning image: uint8 [H, W, 3] (RGB, as a stages::Frame / PIL image holds it) or float
  // [1, 3, H, W] / [3, H, W] in [0, 1]. CLIP sees it at its own size; the VAE sees it at (height,
  // width) — resized (bicubic, antialiased; diffusers uses PIL Lanczos) only when the sizes differ.
  at::Tensor image;
  int64_t width = 1024, height = 576;
  int num_frames = 0;  // 0 → the UNet config's num_frames (14 for SVD, 25 for SVD-XT)
  int steps = 25;
  double min_guidance = 1.0, max_guidance = 3.0;  // CFG runs when max_guidance > 1
  int fps = 7;                                    // the model is conditioned on fps − 1
  int motion_bucket_id = 127;
  double noise_aug_strength = 0.02;
  int decode_chunk = 0;                       // frames per VAE decode call; 0 → num_frames (diffusers' default)
  bool decode = true;                         // false: stop after denoising (SegmentResult::frames undefined)
  std::string sampler = "svd_euler";          // models/schedulers sampler name; "" = the model's own scheduler
  uint64_t seed = 0;                          // the segment's generator seed
  std::optional<at::Tensor> latents;          // explicit unscaled initial noise [1, F, C/2, h, w] (skips that draw)
  std::optional<at::Tensor> noise_aug_noise;  // explicit augmentation noise [1, 3, H, W] (skips that draw)
};

struct SegmentCallbacks {
  // Receives named intermediates (the pipeline fixture's output names: image_embeds, vae_encode_input,
  // image_latents, added_time_ids, unet_encoder_hidden_states, guidance_scale, timesteps, sigmas,
  // init_noise_sigma, unet_input_i, unet_timestep_i, unet_output_i, latents_i, final_latents,
  // vae_decode_input_j, vae_decode_output_j, frames; plus noise_aug_noise, the augmentation noise used).
  std::function<void(const std::string& name, const at::Tensor& value)> trace;
  std::function<void(int step, int total)> on_step;  // after each denoising step
  std::function<void()> check_cancel;                // may throw CancelledError
};

struct SegmentResult {
  at::Tensor latents;  // [1, F, C, h, w] final latents (the scaled space the UNet works in), on the model's device
  at::Tensor frames;   // [1, F, 3, H, W] in [0, 1], float32 on CPU (undefined when request.decode is false)
};

SegmentResult generate_segment(SVDModel& model, const SegmentRequest& request, const SegmentCallbacks& cb = {});

// The pipeline's decode_latents: latents [F, C, h, w] or [1, F, C, h, w] (scaled, as generate_segment
// returns them) → divided by scaling_factor, decoded decode_chunk frames per call; `sink(first, frames)`
// receives each chunk as [n, 3, H, W] in [0, 1] (float32, model device). Memory is bounded by decode_chunk.
void decode_segment_latents(SVDModel& model, const at::Tensor& latents, int decode_chunk,
                            const std::function<void(int64_t first, const at::Tensor& frames)>& sink,
                            const SegmentCallbacks& cb = {});

// A conditioning image for generate_segment from a decoded frame [3, H, W] / [1, 3, H, W] in [0, 1]
// (e.g. the previous segment's frame plan.condition_frame): returned as [1, 3, H, W] float32 in [0, 1]
// on the CPU. Separate from the raw tensor so that callers do not depend on layout rules.
at::Tensor conditioning_image(const at::Tensor& frame01);

}  // namespace clipgen::stages
