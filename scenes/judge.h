// The pixel judge: what sky, ground and object colour an RGB frame shows, from its pixels alone (no
// model, no scene description). It is the quality probe of the built-in model and must score ~100 % on
// the generator's own renders (tests/scenes/test_judge.cpp).
//   sky    = the nearest sky class to the median colour of the top 22 % of the frame;
//   ground = the nearest ground class to the median colour of the bottom 12 %;
//   object = the nearest object colour to the median colour of the largest connected blob of pixels far
//            from their row's median colour (none when no blob of min_blob pixels exists).
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "scenes/scene.h"

namespace clipgen::scenes {

struct Judgement {
  Sky sky = Sky::Clear;
  Ground ground = Ground::Grass;
  std::optional<Colour> object;  // none: no object found
  int object_pixels = 0;
  float object_cx = 0, object_cy = 0;  // blob centroid (pixels)
};

Judgement judge(const uint8_t* rgb, int width, int height, int min_blob = 6);
inline Judgement judge(const Image& im) { return judge(im.rgb.data(), im.width, im.height); }

}  // namespace clipgen::scenes
