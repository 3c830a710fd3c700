// Clips of moving scenes — the training data of the built-in video model — and the measured motion
// amount turned into SVD's `motion_bucket_id` (more motion → higher bucket), as SVD's training set was
// labelled from measured motion rather than from the intent.
#pragma once
#include <vector>

#include "scenes/scene.h"

namespace clipgen::scenes {

struct Clip {
  std::vector<Image> frames;
  double fps = 7;
  float motion = 0;        // measure_motion(frames)
  int motion_bucket_id = 0;
};

// `count` frames at `fps` of the scene's motion (sample_motion) from t = 0.
Clip render_clip(const Scene& scene, int width, int height, int count, double fps);

// Motion amount of a frame sequence: the mean absolute change of a pixel between consecutive frames
// (0–255 levels per frame), over all channels.
float measure_motion(const std::vector<Image>& frames);

// The bucket (0–255) of a motion amount: monotonic, 0 for a still clip, saturating toward 255.
int motion_bucket(float motion);

}  // namespace clipgen::scenes
