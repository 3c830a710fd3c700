// ProceduralScene: a seeded, procedurally drawn landscape — NOT a diffusion model.
//
// clipgen's built-in diffusion model is not trained yet. Until it is, shots whose models are
// "builtin" render this scene so that the whole pipeline (graph, post/retime, encode, checkpoints)
// runs end to end: a sky gradient, a sun or moon disc, drifting clouds and three layers of hills
// with parallax under a slow camera pan. The prompt only picks a palette: a hash of the prompt text
// and the seed chooses hue, saturation and time of day, and a few words steer it ("night", "moon",
// "sunset", "dawn", "forest", "desert", "ocean", "snow"). Keyframes with new prompts change the palette
// with a smooth transition.
//
// Everything is a pure function of (seed, prompts, frame time, raster): the same inputs give
// byte-identical frames on the same build.
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "stages/frame.h"

namespace clipgen::stages {

// The palette and motion parameters of one keyframe. Stored as a float vector (kCount values, in
// declaration order) in the pipeline's keyframe "latents" and per-frame segment tensors.
struct SceneParams {
  float hue = 0.6f;          // 0..1, sky hue
  float saturation = 0.5f;   // 0..1
  float daylight = 1.0f;     // 0 = night, 1 = noon
  float sun_x = 0.7f;        // 0..1 of the width
  float sun_y = 0.3f;        // 0..1 of the height
  float hill_hue = 0.3f;     // 0..1
  float cloud_cover = 0.4f;  // 0..1
  float pan_speed = 0.03f;   // frame widths per second
  static constexpr int kCount = 8;
  std::array<float, kCount> to_array() const;
  static SceneParams from_array(const float* v);
};

// Linear blend a→b with weight t in [0, 1] (hues take the short way round the colour circle).
SceneParams blend(const SceneParams& a, const SceneParams& b, float t);

// Smoothstep weight of a transition of `length` frames starting at `start`, at frame `frame`.
float transition_weight(double frame, double start, double length);

class ProceduralScene {
public:
  explicit ProceduralScene(uint64_t seed);

  // The palette a prompt asks for (deterministic in prompt and seed).
  static SceneParams params_for_prompt(const std::string& prompt, uint64_t seed);

  // Draws the scene at time `t_seconds` (camera pan and clouds move with time) at width × height.
  Frame render(const SceneParams& p, double t_seconds, int width, int height) const;

private:
  uint64_t seed_;
  std::array<float, 9> hill_phase_{};   // three layers × three octaves
  std::array<float, 12> cloud_{};       // four clouds × (x, y, size)
};

}  // namespace clipgen::stages
