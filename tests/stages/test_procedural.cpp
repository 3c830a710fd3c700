// stages::ProceduralScene: deterministic in the seed, prompt-dependent palette, smooth transitions.
#include <gtest/gtest.h>

#include <cmath>

#include "stages/procedural.h"

using namespace clipgen::stages;

namespace {
double mean_abs_diff(const Frame& a, const Frame& b) {
  double s = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) s += std::abs(int(a.rgb[i]) - int(b.rgb[i]));
  return s / static_cast<double>(a.rgb.size());
}
double mean_channel(const Frame& f, int c) {
  double s = 0;
  for (size_t i = static_cast<size_t>(c); i < f.rgb.size(); i += 3) s += f.rgb[i];
  return s / static_cast<double>(f.rgb.size() / 3);
}
}  // namespace

TEST(ProceduralScene, DeterministicInSeedAndPrompt) {
  const auto p = ProceduralScene::params_for_prompt("a lake at noon", 5);
  const auto q = ProceduralScene::params_for_prompt("a lake at noon", 5);
  EXPECT_EQ(p.to_array(), q.to_array());
  const Frame a = ProceduralScene(5).render(p, 1.25, 96, 64);
  const Frame b = ProceduralScene(5).render(q, 1.25, 96, 64);
  EXPECT_EQ(a.rgb, b.rgb);
  EXPECT_EQ(a.width, 96);
  EXPECT_EQ(a.height, 64);
  // Another seed: another layout and palette.
  const Frame c = ProceduralScene(6).render(ProceduralScene::params_for_prompt("a lake at noon", 6), 1.25, 96, 64);
  EXPECT_GT(mean_abs_diff(a, c), 2.0);
  // Another prompt: another palette.
  EXPECT_NE(ProceduralScene::params_for_prompt("a lake at dusk", 5).to_array(), p.to_array());
}

TEST(ProceduralScene, TimeMovesTheCamera) {
  const auto p = ProceduralScene::params_for_prompt("hills", 1);
  ProceduralScene s(1);
  const Frame t0 = s.render(p, 0.0, 96, 64), t1 = s.render(p, 2.0, 96, 64);
  EXPECT_GT(mean_abs_diff(t0, t1), 0.2);
  EXPECT_LT(mean_abs_diff(t0, s.render(p, 0.05, 96, 64)), mean_abs_diff(t0, t1));
}

TEST(ProceduralScene, NightIsDarkerThanDay) {
  ProceduralScene s(3);
  const Frame night = s.render(ProceduralScene::params_for_prompt("a village at night", 3), 0, 64, 64);
  const Frame day = s.render(ProceduralScene::params_for_prompt("a village", 3), 0, 64, 64);
  const double ln = mean_channel(night, 0) + mean_channel(night, 1) + mean_channel(night, 2);
  const double ld = mean_channel(day, 0) + mean_channel(day, 1) + mean_channel(day, 2);
  EXPECT_LT(ln, ld * 0.7);
}

TEST(ProceduralScene, TransitionsAreSmooth) {
  EXPECT_FLOAT_EQ(transition_weight(9, 10, 4), 0.f);
  EXPECT_FLOAT_EQ(transition_weight(10, 10, 4), 0.f);
  EXPECT_FLOAT_EQ(transition_weight(12, 10, 4), 0.5f);
  EXPECT_FLOAT_EQ(transition_weight(14, 10, 4), 1.f);
  float prev = 0;
  for (int f = 10; f <= 14; ++f) {
    const float w = transition_weight(f, 10, 4);
    EXPECT_GE(w, prev);
    prev = w;
  }
  SceneParams a, b;
  a.hue = 0.95f;
  b.hue = 0.05f;
  const float h = blend(a, b, 0.5f).hue;  // the short way round the colour circle: 0 (= 1), not 0.5
  EXPECT_LT(std::min(h, 1.f - h), 1e-5f);
  EXPECT_EQ(blend(a, b, 0.f).to_array(), a.to_array());
}
