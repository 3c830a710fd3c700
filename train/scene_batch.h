// Training batches from the procedural scene generator (scenes/): pixels in the models' range [-1, 1],
// object masks (for the object-weighted losses), captions with classifier-free-guidance dropout.
// A batch is a pure function of (recipe seed, stream, step): a resumed run sees exactly the batches an
// uninterrupted one would, with no data-loader state to save.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "configs/train_recipe.h"
#include "scenes/scene.h"

namespace clipgen::train {

struct SceneBatch {
  at::Tensor pixels;       // float32 [B, 3, H, W] in [-1, 1]
  at::Tensor object_mask;  // float32 [B, 1, H, W] in {0, 1}
  std::vector<std::string> captions;  // "" where dropped
  std::vector<scenes::Scene> scenes;  // what each row shows (after augmentation)
  bool landscape = false;
};

// What preprocessing did, summed over the batches made (reported in the training log).
struct BatchStats {
  int64_t scenes = 0;            // scenes put into batches
  int64_t dropped_hidden = 0;    // drawn but refused: object hidden or too small to see
  int64_t flipped = 0;
  int64_t captions_dropped = 0;
};

class SceneBatcher {
public:
  explicit SceneBatcher(const configs::TrainRecipe& recipe) : r_(recipe) {}
  // `stream` separates phases (VAE, UNet, evaluation) so their data never coincide.
  SceneBatch make(uint64_t stream, int64_t step, int64_t batch);
  bool landscape(uint64_t stream, int64_t step) const;
  const BatchStats& stats() const { return stats_; }

private:
  const configs::TrainRecipe& r_;
  BatchStats stats_;
};

// Stream ids (part of the reproducibility contract of a recipe: never renumber).
inline constexpr uint64_t kVaeStream = 1, kUNetStream = 2, kEvalStream = 3;

}  // namespace clipgen::train
