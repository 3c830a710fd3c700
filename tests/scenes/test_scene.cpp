// scenes::sample_scene / render: deterministic, the vocabulary's layout rules (horizon band, object size,
// extras only when set), clips that move, flips that mirror.
#include <gtest/gtest.h>

#include <algorithm>

#include "scenes/scene.h"

using namespace clipgen::scenes;

TEST(Scene, DeterministicInTheSeed) {
  const Scene a = sample_scene(42), b = sample_scene(42), c = sample_scene(43);
  const Image ia = render(a, 64, 112), ib = render(b, 64, 112), ic = render(c, 64, 112);
  EXPECT_EQ(ia.rgb, ib.rgb);
  EXPECT_EQ(ia.object_mask, ib.object_mask);
  EXPECT_NE(ia.rgb, ic.rgb);
}

TEST(Scene, LayoutStaysInsideTheVocabularyRules) {
  int kinds[kObjects] = {}, colours[kColours] = {}, sun = 0, moon = 0, clouds = 0;
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    const Scene s = sample_scene(seed);
    ASSERT_GE(s.horizon, 0.55f);
    ASSERT_LE(s.horizon, 0.80f);
    ASSERT_GE(s.obj_size, 0.10f);
    ASSERT_LE(s.obj_size, 0.35f);
    ++kinds[static_cast<int>(s.object)];
    ++colours[static_cast<int>(s.colour)];
    sun += s.sun, moon += s.moon, clouds += s.clouds;
    if (s.sun) EXPECT_TRUE(s.sky == Sky::Clear || s.sky == Sky::Sunset);
    if (s.moon) EXPECT_TRUE(s.sky == Sky::Night || s.sky == Sky::Clear);
    EXPECT_FALSE(s.sun && s.moon);
    if (s.object == Object::Box) EXPECT_GT(s.obj_y, s.horizon) << "a box stands on the ground";
    if (s.object == Object::Kite) EXPECT_LT(s.obj_y, s.horizon) << "a kite flies in the sky";
  }
  for (int k : kinds) EXPECT_GT(k, 500);
  for (int c : colours) EXPECT_GT(c, 150);
  EXPECT_GT(sun, 100);
  EXPECT_GT(moon, 100);
  EXPECT_GT(clouds, 200);
}

TEST(Scene, ObjectCoversItsSize) {
  Scene s = sample_scene(7);
  s.object = Object::Ball;
  s.obj_x = 0.5f, s.obj_y = 0.4f, s.obj_size = 0.25f;
  const Image im = render(s, 64, 112);
  // A disc of diameter 16 px covers ~201 px.
  EXPECT_NEAR(im.object_pixels(), 201, 20);
  EXPECT_EQ(im.object_mask[static_cast<size_t>(0.4 * 112) * 64 + 32], 1);
}

TEST(Scene, UnnamedExtrasNeverAppear) {
  Scene s = sample_scene(11);
  s.sky = Sky::Clear;
  s.moon = s.clouds = false;
  s.sun = true;
  s.disc_x = 0.2f, s.disc_y = 0.15f;
  s.obj_x = 0.75f;
  Scene no_sun = s;
  no_sun.sun = false;
  const Image with = render(s, 64, 112), without = render(no_sun, 64, 112);
  const size_t at = (static_cast<size_t>(0.15 * 112) * 64 + static_cast<size_t>(0.2 * 64)) * 3;
  EXPECT_GT(with.rgb[at] + with.rgb[at + 1], without.rgb[at] + without.rgb[at + 1] + 60) << "the sun is bright";
}

TEST(Scene, MotionMovesTheObjectAndFlipMirrors) {
  Scene s = sample_scene(3);
  s.motion = {};
  s.motion.vx = 0.2f;
  const Image a = render(s, 64, 112, 0), b = render(s, 64, 112, 1.0);
  auto centroid_x = [](const Image& im) {
    double sx = 0, n = 0;
    for (int i = 0; i < im.width * im.height; ++i)
      if (im.object_mask[static_cast<size_t>(i)]) sx += i % im.width, ++n;
    return sx / n;
  };
  EXPECT_NEAR(centroid_x(b) - centroid_x(a), 0.2 * 64, 1.5);
  const Image f = render(flipped(s), 64, 112, 0);
  EXPECT_NEAR(centroid_x(f), 63 - centroid_x(a), 1.0);
  int moved = 0;
  for (uint64_t seed = 0; seed < 60; ++seed) {
    Scene m = sample_scene(seed);
    sample_motion(m, seed);
    moved += render(m, 64, 112, 0).rgb != render(m, 64, 112, 1.0).rgb;
  }
  EXPECT_GT(moved, 50);
}

TEST(Scene, HiddenObjectsAreRefused) {
  Scene s = sample_scene(5);
  s.ground = Ground::Snow;
  s.colour = Colour::White;
  s.object = Object::Box;
  s.obj_y = s.horizon + 0.1f;
  s.jitter = {0, 0, 0};
  EXPECT_FALSE(object_visible(s, render(s, 64, 112)));
  s.colour = Colour::Red;
  EXPECT_TRUE(object_visible(s, render(s, 64, 112)));
  s.obj_size = 0.02f;
  EXPECT_FALSE(object_visible(s, render(s, 64, 112))) << "too small to see";
}
