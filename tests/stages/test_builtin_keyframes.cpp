// The quality probe of the built-in keyframe model (models/builtin/clipgen-tiny), judged by pixels only
// (scenes::judge, which knows nothing of the model): 100 prompts of the vocabulary with seeds never used
// in training, rendered through the keyframe stage exactly as `clipgen run` renders a shot that names no
// model (the diffusers-folder loader, the resolved shot's sampler: Euler, 25 steps, CFG 3 — the built-in
// model's default, chosen on a separate set of held-out prompts). The figures
// are printed and recorded in docs/builtin-model.md.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <torch/torch.h>

#include "configs/preset.h"
#include "configs/shot.h"
#include "scenes/caption.h"
#include "scenes/judge.h"
#include "stages/keyframe.h"
#include "tests/test_util.h"

using namespace clipgen;

namespace {

struct Figures {
  int n = 0, sky = 0, ground = 0, object = 0;
  double rate(int k) const { return static_cast<double>(k) / std::max(1, n); }
};

Figures probe(int count, bool print_misses) {
  auto model = stages::load_sd_pipeline(configs::builtin_keyframe_model());
  // What a shot that names no model and says nothing about its sampler gets.
  const auto dir = test::scratch_dir("builtin_probe");
  test::write_file(dir / "shot.yaml", "id: probe\nduration: 1\nprompt: a red ball over snow at sunset\n");
  const auto shot = configs::load_shots({dir / "shot.yaml"}, configs::LoadOptions{.out_root = dir / "out"}).shots.at(0);
  EXPECT_EQ(shot.keyframe_model.path, configs::builtin_keyframe_model());
  const configs::Sampler defaults = shot.sampler;
  Figures f;
  for (int k = 0; k < count; ++k) {
    // Probe scenes come from seeds far outside the training streams, with no extras (the judge reads the
    // largest blob as the object, and a sun is a blob).
    auto s = scenes::sample_scene(0x9E0BE000ull + static_cast<uint64_t>(k));
    s.sun = s.moon = s.clouds = false;
    const bool landscape = k % 5 == 4;
    stages::KeyframeRequest req;
    req.prompt = scenes::caption(s, static_cast<uint64_t>(k));
    req.width = landscape ? 112 : 64;
    req.height = landscape ? 64 : 112;
    req.steps = defaults.steps;
    req.guidance = defaults.guidance;
    req.sampler = defaults.name;
    req.seed = 7'000'000 + static_cast<uint64_t>(k);
    const auto img = stages::generate_keyframe(model, req).image;  // [1,3,H,W] in [0,1]
    const auto rgb = (img[0].permute({1, 2, 0}) * 255).round().clamp(0, 255).to(torch::kUInt8).contiguous();
    const auto j = scenes::judge(rgb.data_ptr<uint8_t>(), static_cast<int>(req.width), static_cast<int>(req.height));
    ++f.n;
    f.sky += j.sky == s.sky;
    f.ground += j.ground == s.ground;
    const bool obj = j.object && *j.object == s.colour;
    f.object += obj;
    if (print_misses && (!obj || j.sky != s.sky || j.ground != s.ground))
      fmt::print("  miss: '{}' → sky {}, ground {}, object {}\n", req.prompt, scenes::name(j.sky), scenes::name(j.ground),
                 j.object ? scenes::name(*j.object) : "none");
  }
  fmt::print("built-in keyframe probe over {} prompts: sky {:.0f} %, ground {:.0f} %, object colour {:.0f} %\n", f.n,
             100 * f.rate(f.sky), 100 * f.rate(f.ground), 100 * f.rate(f.object));
  return f;
}

}  // namespace

TEST(BuiltinKeyframes, PromptedSceneIsWhatThePixelsShow) {
  const Figures f = probe(100, true);
  ASSERT_EQ(f.n, 100);
  EXPECT_GE(f.rate(f.sky), 0.80);
  EXPECT_GE(f.rate(f.ground), 0.80);
  EXPECT_GE(f.rate(f.object), 0.80);
}
