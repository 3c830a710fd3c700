// `clipgen train RECIPE.yaml`: trains the built-in keyframe model — AutoencoderKL first, then
// UNet2DConditionModel with a CLIPTextModel trained jointly — on the procedural scene generator, and
// exports a diffusers folder. Each phase checkpoints every few minutes and a rerun resumes where the last
// one stopped (see phase_runner.h). Output under the recipe's work_dir: <phase>-state.safetensors,
// <phase>-loss.csv/.png, <phase>-eval.csv (pixel-judge figures during training), samples.png/.txt.
#pragma once
#include <cstdint>
#include <string>

#include "configs/train_recipe.h"

namespace clipgen::train {

struct TrainOptions {
  std::string phase = "all";    // all | vae | unet | export (the last checkpoints, even of an unfinished UNet phase)
  std::string device = "cpu";   // cpu | cuda[:N]
  bool fresh = false;           // ignore (and delete) existing checkpoints of the phases that run
  double max_minutes = 0;       // per phase: stop after a checkpoint once this much time has passed (0: no limit)
  int64_t eval_every = 250;     // UNet phase: pixel-judge evaluation every N steps (0: only at the end)
  int64_t steps = 0;            // >0: override both phases' step counts (smoke runs and tests)
  int64_t stop_at_step = 0;     // >0: stop each phase (after a checkpoint) at this step; a rerun resumes
};

struct TrainResult {
  bool complete = false;        // every phase done and the folder exported
  int64_t vae_steps = 0, unet_steps = 0;
  double vae_seconds = 0, unet_seconds = 0;
};

TrainResult train_keyframe_model(const configs::TrainRecipe& recipe, const TrainOptions& options);

}  // namespace clipgen::train
