// Text-to-image sampling of a trained keyframe model inside the trainer (no libav, no pipeline): the
// evaluation during training and the final sample grid. The same scheduler classes and classifier-free
// guidance as the keyframe stage (stages/keyframe), which is what `clipgen run` uses on the exported folder.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "models/autoencoder_kl.h"
#include "models/clip_text_model.h"
#include "models/schedulers/scheduler.h"
#include "models/tokenizer/clip_tokenizer.h"
#include "models/unet_2d_condition.h"

namespace clipgen::train {

struct KeyframeModel {
  const CLIPTokenizer* tokenizer = nullptr;
  CLIPTextModel text_encoder{nullptr};
  UNet2DConditionModel unet{nullptr};
  AutoencoderKL vae{nullptr};
  schedulers::SchedulerConfig scheduler;
  double scaling_factor = 1;
};

struct SampleOptions {
  int width = 64, height = 112;
  int steps = 20;
  double guidance = 4;
  std::string sampler = "euler";
  int batch = 8;  // prompts denoised together
};

// One image per (prompt, seed): uint8 [N, H, W, 3] on the CPU. Initial latents are drawn from a CPU
// generator seeded with each seed (as diffusers would).
at::Tensor sample_images(KeyframeModel& m, const std::vector<std::string>& prompts, const std::vector<uint64_t>& seeds,
                         const SampleOptions& opt);

// Images in [-1, 1] [N, 3, H, W] (any device) → uint8 [N, H, W, 3] on the CPU.
at::Tensor to_u8_nhwc(const at::Tensor& images);

// Tiles uint8 [N, H, W, 3] images into one RGB24 grid of `columns` columns (1-pixel white gaps).
std::vector<uint8_t> tile_grid(const at::Tensor& images, int columns, int& grid_w, int& grid_h);

}  // namespace clipgen::train
