#include "scenes/clip.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace clipgen::scenes {

Clip render_clip(const Scene& scene, int width, int height, int count, double fps) {
  Clip c;
  c.fps = fps;
  for (int i = 0; i < count; ++i) c.frames.push_back(render(scene, width, height, i / fps));
  c.motion = measure_motion(c.frames);
  c.motion_bucket_id = motion_bucket(c.motion);
  return c;
}

float measure_motion(const std::vector<Image>& frames) {
  if (frames.size() < 2) return 0;
  double sum = 0;
  size_t n = 0;
  for (size_t f = 1; f < frames.size(); ++f) {
    const auto& a = frames[f - 1].rgb;
    const auto& b = frames[f].rgb;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) sum += std::abs(int(a[i]) - int(b[i]));
    n += std::min(a.size(), b.size());
  }
  return static_cast<float>(sum / static_cast<double>(std::max<size_t>(1, n)));
}

int motion_bucket(float motion) {
  // About 127 (SVD's default bucket) at 0.6 levels of mean change per frame, the middle of the generator's
  // motions at 7 fps; 200 at 1.4.
  const double b = 255.0 * (1.0 - std::exp(-std::max(0.0f, motion) / 0.9));
  return static_cast<int>(std::clamp(std::lround(b), 0L, 255L));
}

}  // namespace clipgen::scenes
