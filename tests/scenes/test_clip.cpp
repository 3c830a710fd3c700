// scenes::render_clip / motion_bucket: a still scene is bucket 0; more motion, a higher bucket.
#include <gtest/gtest.h>

#include "scenes/clip.h"

using namespace clipgen::scenes;

TEST(Clip, StillSceneIsBucketZero) {
  Scene s = sample_scene(4);
  s.motion = {};
  const Clip c = render_clip(s, 64, 112, 6, 7);
  EXPECT_EQ(c.frames.size(), 6u);
  EXPECT_EQ(c.motion, 0.0f);
  EXPECT_EQ(c.motion_bucket_id, 0);
}

TEST(Clip, MoreMotionGivesAHigherBucket) {
  Scene s = sample_scene(8);
  s.sun = s.moon = s.clouds = false;
  s.motion = {};
  s.motion.vx = 0.05f;
  const Clip slow = render_clip(s, 64, 112, 8, 7);
  s.motion.vx = 0.4f;
  const Clip fast = render_clip(s, 64, 112, 8, 7);
  s.motion.vx = 0;
  s.motion.pan = 0.3f;
  const Clip pan = render_clip(s, 64, 112, 8, 7);
  EXPECT_GT(slow.motion_bucket_id, 0);
  EXPECT_GT(fast.motion_bucket_id, slow.motion_bucket_id);
  EXPECT_GT(pan.motion_bucket_id, slow.motion_bucket_id) << "a pan moves the whole background";
  EXPECT_LE(fast.motion_bucket_id, 255);
  // Over sampled motions, buckets spread over the range.
  int low = 0, high = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    Scene m = sample_scene(seed);
    sample_motion(m, seed);
    const int b = render_clip(m, 64, 112, 6, 7).motion_bucket_id;
    low += b < 80;
    high += b > 160;
  }
  EXPECT_GT(low, 3);
  EXPECT_GT(high, 0);
}
