// scenes::caption / parse_prompt: captions name exactly the scene's attributes, in varied order and
// synonyms; parsing a caption gives the scene's attributes back; unknown words are reported.
#include <gtest/gtest.h>

#include <set>

#include "scenes/caption.h"

using namespace clipgen::scenes;

TEST(Caption, RoundTripsThroughTheParser) {
  std::set<std::string> distinct;
  for (uint64_t seed = 0; seed < 3000; ++seed) {
    const Scene s = sample_scene(seed);
    const std::string c = caption(s, seed);
    distinct.insert(c);
    const PromptParse p = parse_prompt(c);
    ASSERT_TRUE(p.sky && p.ground && p.object && p.colour) << c;
    EXPECT_EQ(*p.sky, s.sky) << c;
    EXPECT_EQ(*p.ground, s.ground) << c;
    EXPECT_EQ(*p.object, s.object) << c;
    EXPECT_EQ(*p.colour, s.colour) << c;
    EXPECT_EQ(p.sun, s.sun) << c;
    EXPECT_EQ(p.moon, s.moon) << c;
    EXPECT_EQ(p.clouds, s.clouds) << c;
    EXPECT_TRUE(p.unknown.empty()) << c;
  }
  EXPECT_GT(distinct.size(), 1500u);
}

TEST(Caption, VariesOrderAndSynonyms) {
  Scene s = sample_scene(1);
  s.sky = Sky::Clear;
  s.ground = Ground::Sea;
  std::set<std::string> forms;
  for (uint64_t seed = 0; seed < 200; ++seed) forms.insert(caption(s, seed));
  EXPECT_GE(forms.size(), 12u);  // 5 orders × 2 sky × 2 ground phrases
  bool blue_sky = false, ocean = false;
  for (const auto& f : forms) blue_sky |= f.find("under a blue sky") != std::string::npos, ocean |= f.find("above the ocean") != std::string::npos;
  EXPECT_TRUE(blue_sky);
  EXPECT_TRUE(ocean);
}

TEST(Caption, ParsesFreeTextAndReportsUnknownWords) {
  const auto p = parse_prompt("At night, a Blue kite above the ocean with the moon -- cinematic, 35mm");
  EXPECT_EQ(p.sky, Sky::Night);
  EXPECT_EQ(p.ground, Ground::Sea);
  EXPECT_EQ(p.object, Object::Kite);
  EXPECT_EQ(p.colour, Colour::Blue);
  EXPECT_TRUE(p.moon);
  EXPECT_FALSE(p.sun);
  EXPECT_EQ(p.unknown, (std::vector<std::string>{"cinematic", "35mm"}));
  // "blue sky" is a sky, not a colour.
  const auto q = parse_prompt("a red ball under a blue sky");
  EXPECT_EQ(q.colour, Colour::Red);
  EXPECT_EQ(q.sky, Sky::Clear);
  EXPECT_TRUE(parse_prompt("a dragon").unknown == std::vector<std::string>{"dragon"});
}

TEST(Caption, SceneForPromptShowsWhatIsNamed) {
  const auto p = parse_prompt("a yellow box over snow at sunset");
  for (uint64_t seed = 0; seed < 50; ++seed) {
    const Scene s = scene_for_prompt(p, seed);
    EXPECT_EQ(s.colour, Colour::Yellow);
    EXPECT_EQ(s.object, Object::Box);
    EXPECT_EQ(s.ground, Ground::Snow);
    EXPECT_EQ(s.sky, Sky::Sunset);
    EXPECT_FALSE(s.sun || s.moon || s.clouds);
    EXPECT_GT(s.obj_y, s.horizon);
  }
}
