// SD 2.x and SDXL diffusers folders render through `clipgen run` like SD 1.x does: a shot naming each
// tiny pipeline (tests/tiny_pipelines.h: the reference fixture components, text encoders widened to the
// real tokenizer's vocabulary) renders, the clip probes as the preset says, and the keyframe
// PNGs the CLI wrote equal what the keyframe stage gives when called directly with the request the shot
// means (raster = the model's native size in the preset's aspect, seed = the shot seed's keyframe stream,
// sampler/steps/guidance/negative prompt from the shot). SD 2.1 runs v-prediction, SDXL its two text
// encoders, pooled embeddings and add_time_ids, and the zeroed negative for a shot without one.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>

#include "configs/preset.h"
#include "models/rng.h"
#include "pipeline/diffusion_renderer.h"
#include "stages/image_io.h"
#include "stages/keyframe.h"
#include "tests/pipeline/cli_test_util.h"
#include "tests/test_util.h"
#include "tests/tiny_pipelines.h"

using namespace clipgen;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kSeed = 4242;

// Renders `shot_body` (with the model line appended) through the CLI at the 144×256 test preset; returns
// the output folder.
fs::path render(const fs::path& dir, const fs::path& model, const std::string& shot_body) {
  const auto presets = test::write_test_preset(dir / "presets", "tiny-vertical", 144, 256);
  test::write_file(dir / "shot.yaml", shot_body + "models: {keyframe: " + model.string() + "}\n");
  auto r = test::run_shot(dir / "shot.yaml", presets, dir / "out");
  EXPECT_EQ(r.code, 0) << r.out;
  return dir / "out";
}

void expect_clip(const fs::path& mp4, int64_t frames) {
  ASSERT_TRUE(fs::exists(mp4)) << mp4;
  const auto probe = test::ffprobe(mp4);
  const auto& v = probe["streams"][0];
  EXPECT_EQ(v["codec_name"], "h264");
  EXPECT_EQ(v["width"], 144);
  EXPECT_EQ(v["height"], 256);
  EXPECT_EQ(v["nb_read_frames"], std::to_string(frames));
}

// Keyframe k as the CLI must have made it, from the stage called directly.
void expect_keyframe(const fs::path& out, const fs::path& model, stages::KeyframeRequest r, int k) {
  // Native size 16 × 8 = 128 px; below 512 the short side gets it: 128 × floor(227.6 / 8) · 8.
  r.width = 128;
  r.height = 224;
  configs::Preset p;
  p.width = 144;
  p.height = 256;
  EXPECT_EQ(pipeline::diffusion_generation_raster(p, 128), std::make_pair(128, 224));
  r.seed = derive_seed(kSeed, SeedStream::KeyframeLatents, static_cast<uint64_t>(k));
  c10::InferenceMode guard;
  auto m = stages::load_sd_pipeline(model);
  auto direct = stages::generate_keyframe(m, r);
  auto png = stages::read_image(out / ("tiny.keyframe" + std::to_string(k) + ".png"));
  ASSERT_EQ(png.width, 128);
  ASSERT_EQ(png.height, 224);
  auto expect = direct.image[0].mul(255).round().clamp(0, 255).to(torch::kByte).permute({1, 2, 0}).contiguous();
  auto got_rgb = torch::from_blob(png.rgb.data(), {224, 128, 3}, torch::kByte);
  // 8-bit rounding of the same float image (threads may order sums differently between the two processes).
  EXPECT_LE((got_rgb.to(torch::kInt) - expect.to(torch::kInt)).abs().max().item<int>(), 1);
  // ...and the comparison can tell another seed apart.
  r.seed += 1;
  auto other = stages::generate_keyframe(m, r).image[0].mul(255).round().clamp(0, 255).to(torch::kByte);
  EXPECT_GT((got_rgb.permute({2, 0, 1}).to(torch::kInt) - other.to(torch::kInt)).abs().max().item<int>(), 8);
}

stages::KeyframeRequest request(const std::string& prompt, std::optional<std::string> negative, int steps,
                                double guidance) {
  stages::KeyframeRequest r;
  r.prompt = prompt;
  r.negative_prompt = std::move(negative);
  r.steps = steps;
  r.guidance = guidance;
  r.sampler = "euler";
  return r;
}

}  // namespace

TEST(FamilyShots, Sd21FolderRendersWithVPrediction) {
  const auto dir = test::scratch_dir("family_sd21");
  const auto model = test::tiny_sd21(dir / "model");
  const auto got = render(dir, model, R"(id: tiny
preset: tiny-vertical
frames: 6
seed: 4242
prompt: "a lighthouse at dusk"
negative_prompt: "blurry"
sampler: {name: euler, steps: 2, guidance: 6}
)");
  expect_clip(got / "tiny.mp4", 6);
  EXPECT_TRUE(fs::exists(got / "tiny.contact.png"));
  expect_keyframe(got, model, request("a lighthouse at dusk", "blurry", 2, 6), 0);
  // The model really is v-prediction (the stage took the scheduler's prediction type from the folder).
  EXPECT_EQ(stages::load_sd_pipeline(model).scheduler_config.prediction_type, "v_prediction");
}

TEST(FamilyShots, SdxlFolderRendersTwoKeyframes) {
  const auto dir = test::scratch_dir("family_sdxl");
  const auto model = test::tiny_sdxl(dir / "model");
  const auto got = render(dir, model, R"(id: tiny
preset: tiny-vertical
frames: 8
seed: 4242
prompt: "a red kite over the dunes"
keyframes:
  - at: 0
  - at: f4
    prompt: "a blue kite over the sea"
    negative_prompt: "fog"
sampler: {name: euler, steps: 2, guidance: 5}
)");
  expect_clip(got / "tiny.mp4", 8);
  EXPECT_TRUE(fs::exists(got / "tiny.contact.png"));
  // No negative prompt for the first: zero unconditional embeddings (force_zeros_for_empty_prompt).
  expect_keyframe(got, model, request("a red kite over the dunes", std::nullopt, 2, 5), 0);
  expect_keyframe(got, model, request("a blue kite over the sea", "fog", 2, 5), 1);
}
