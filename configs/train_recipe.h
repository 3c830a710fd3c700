// A training recipe (configs/train/*.yaml) for `clipgen train`: resolved and validated once into this
// typed struct. YAML problems are ConfigErrors naming file:line:col and the key path. Model configs are
// diffusers/transformers config.json objects written as YAML mappings; they are carried as JSON text and
// checked by the model classes themselves when the trainer builds them (train/).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace clipgen::configs {

// Optimisation settings of one training phase.
struct TrainPhase {
  int64_t steps = 0;            // optimizer steps in total (a resumed run continues to this count)
  int64_t batch = 16;
  double lr = 1e-3;
  int64_t warmup = 0;           // linear learning-rate warm-up steps
  double weight_decay = 0.01;   // AdamW
  double grad_clip = 1.0;       // max global gradient norm (0: off)
  double ema = 0.0;             // EMA decay (0: no EMA; the exported weights are then the trained ones)
  double object_weight = 1.0;   // loss weight of object pixels (latent cells for the UNet) relative to 1
  double kl_weight = 1e-6;      // VAE only: KL term weight
  std::string model_config;     // JSON text of the model's config.json
};

struct TrainRecipe {
  std::filesystem::path file;   // the recipe file
  std::string name = "clipgen-tiny";
  std::filesystem::path output;    // the diffusers pipeline folder written at the end (relative: to the recipe's folder)
  std::filesystem::path work_dir;  // checkpoints, loss curves, samples (relative: to the recipe's folder)
  uint64_t seed = 1;
  int width = 64, height = 112;    // training raster (vertical); landscape batches swap the sides
  double landscape_fraction = 0.25;
  double caption_dropout = 0.1;    // fraction of captions replaced by "" (classifier-free guidance)
  bool flip = true;                // horizontal flips (captions stay true)
  double checkpoint_minutes = 5;
  TrainPhase vae, unet;
  std::string text_encoder_config;  // JSON text (CLIPTextModel config.json); trained jointly with the UNet
  std::string scheduler_config;     // JSON text (scheduler_config.json): the noise schedule of training and inference
  std::vector<std::string> sample_prompts;  // the final sample grid and the probe's fixed prompts
  int sample_steps = 20;
  double sample_guidance = 4.0;
  std::string text;                 // the recipe file's bytes (hashed into checkpoints)
};

TrainRecipe load_train_recipe(const std::filesystem::path& file);

}  // namespace clipgen::configs
