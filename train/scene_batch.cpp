#include "train/scene_batch.h"

#include <torch/torch.h>

#include "scenes/caption.h"

namespace clipgen::train {

bool SceneBatcher::landscape(uint64_t stream, int64_t step) const {
  scenes::Rng rng(scenes::mix_seed(scenes::mix_seed(r_.seed, stream), static_cast<uint64_t>(step) * 2 + 1));
  return rng.uniform() < r_.landscape_fraction;
}

SceneBatch SceneBatcher::make(uint64_t stream, int64_t step, int64_t batch) {
  SceneBatch b;
  b.landscape = landscape(stream, step);
  const int w = b.landscape ? r_.height : r_.width, h = b.landscape ? r_.width : r_.height;
  b.pixels = torch::empty({batch, 3, h, w});
  b.object_mask = torch::empty({batch, 1, h, w});
  auto px = b.pixels.accessor<float, 4>();
  auto mk = b.object_mask.accessor<float, 4>();
  const uint64_t base = scenes::mix_seed(scenes::mix_seed(r_.seed, stream), static_cast<uint64_t>(step) * 2);
  for (int64_t i = 0; i < batch; ++i) {
    // Draw until the object can be seen (a hidden object would be captioned wrongly).
    for (uint64_t attempt = 0;; ++attempt) {
      const uint64_t seed = scenes::mix_seed(base, static_cast<uint64_t>(i) << 16 | attempt);
      scenes::Scene s = scenes::sample_scene(seed);
      scenes::Rng aug(scenes::mix_seed(seed, 0xA06));
      if (r_.flip && aug.below(2) == 1) {
        s = scenes::flipped(s);
        ++stats_.flipped;
      }
      const auto im = scenes::render(s, w, h);
      if (!scenes::object_visible(s, im) && attempt < 64) {
        ++stats_.dropped_hidden;
        continue;
      }
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          const size_t k = static_cast<size_t>(y) * w + x;
          for (int c = 0; c < 3; ++c) px[i][c][y][x] = static_cast<float>(im.rgb[k * 3 + c]) / 127.5f - 1.0f;
          mk[i][0][y][x] = im.object_mask[k];
        }
      const bool drop = aug.uniform() < r_.caption_dropout;
      stats_.captions_dropped += drop;
      b.captions.push_back(drop ? std::string() : scenes::caption(s, seed));
      b.scenes.push_back(s);
      ++stats_.scenes;
      break;
    }
  }
  return b;
}

}  // namespace clipgen::train
