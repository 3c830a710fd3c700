// scenes::judge: the pixel judge of the quality probe scores (near) 100 % on the generator's own renders,
// and fails on pictures that are wrong.
#include <gtest/gtest.h>

#include "scenes/caption.h"
#include "scenes/judge.h"

using namespace clipgen::scenes;

TEST(Judge, ScoresTheGroundTruthRenders) {
  int n = 0, sky = 0, ground = 0, object = 0;
  for (uint64_t seed = 0; seed < 600; ++seed) {
    Scene s = sample_scene(seed);
    s.sun = s.moon = s.clouds = false;  // the probe's prompts name no extras
    for (bool landscape : {false, true}) {
      const Image im = landscape ? render(s, 112, 64) : render(s, 64, 112);
      if (!object_visible(s, im)) continue;
      const Judgement j = judge(im);
      ++n;
      sky += j.sky == s.sky;
      ground += j.ground == s.ground;
      object += j.object && *j.object == s.colour;
    }
  }
  ASSERT_GT(n, 900);
  EXPECT_EQ(sky, n);
  EXPECT_EQ(ground, n);
  EXPECT_GE(object, n * 97 / 100);
}

TEST(Judge, WrongPicturesAreJudgedWrong) {
  Scene s = sample_scene(9);
  s.sun = s.moon = s.clouds = false;
  s.sky = Sky::Night;
  s.ground = Ground::Sand;
  s.colour = Colour::Red;
  s.object = Object::Ball;
  Image im = render(s, 64, 112);
  ASSERT_EQ(judge(im).object, Colour::Red);
  // Paint the object blue: the judge must see blue.
  for (size_t i = 0; i < im.object_mask.size(); ++i)
    if (im.object_mask[i]) im.rgb[i * 3] = 35, im.rgb[i * 3 + 1] = 75, im.rgb[i * 3 + 2] = 220;
  EXPECT_EQ(judge(im).object, Colour::Blue);
  // A flat grey frame: overcast sky, no object.
  Image grey = im;
  std::fill(grey.rgb.begin(), grey.rgb.end(), 150);
  const auto j = judge(grey);
  EXPECT_EQ(j.sky, Sky::Overcast);
  EXPECT_FALSE(j.object.has_value());
}
