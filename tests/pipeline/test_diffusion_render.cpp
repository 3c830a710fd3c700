// A shot naming a diffusers Stable Diffusion folder renders through the real pipeline: keyframes from
// the diffusion keyframe stage (the tiny SD fixture model in tests/data/models/tiny-sd15, whose parts
// are the reference fixtures), held and cross-faded, post-processed and encoded.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "configs/shot.h"
#include "core/error.h"
#include "models/rng.h"
#include "pipeline/diffusion_renderer.h"
#include "pipeline/render.h"
#include "stages/image_io.h"
#include "stages/keyframe.h"
#include "tests/pipeline/cli_test_util.h"
#include "tests/test_util.h"
#include "tests/tiny_pipelines.h"

using namespace clipgen;
namespace fs = std::filesystem;

static std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  if (p) pclose(p);
  return out;
}

static fs::path write_shot(const fs::path& dir, const std::string& body) {
  auto f = dir / "shot.yaml";
  std::ofstream(f) << body;
  return f;
}

static std::string model_dir() { return (test::data_dir() / "models" / "tiny-sd15").string(); }

TEST(DiffusionRender, RasterFollowsTheModelAndPreset) {
  configs::Preset vertical;
  vertical.width = 1080;
  vertical.height = 1920;
  EXPECT_EQ(pipeline::diffusion_generation_raster(vertical, 512), std::make_pair(512, 896));
  EXPECT_EQ(pipeline::diffusion_generation_raster(vertical, 1024), std::make_pair(768, 1344));
  configs::Preset hd;
  hd.width = 1920;
  hd.height = 1080;
  EXPECT_EQ(pipeline::diffusion_generation_raster(hd, 768), std::make_pair(1344, 768));
}

TEST(DiffusionRender, TwoKeyframeShotRendersThroughTheCli) {
  auto dir = test::scratch_dir("diffusion_render");
  auto shot = write_shot(dir, R"(version: 1
id: tiny-sd
preset: square
frames: 12
seed: 1234
prompt: "a photo of a cat"
negative_prompt: "blurry, low quality"
keyframes:
  - at: 0
  - at: f6
    prompt: "a photo of a dog"
sampler: {name: euler, steps: 3, guidance: 7.5}
motion: {transition_frames: 2, decode_chunk: 5}
models: {keyframe: )" + model_dir() + R"(}
)");
  auto list = configs::load_shots({shot}, {.out_root = dir / "renders"});
  ASSERT_EQ(list.shots.size(), 1u);
  pipeline::RenderOptions opt;
  opt.out_root = dir / "renders";
  pipeline::RunReport report;
  pipeline::render_shots(list, opt, report);

  const auto& s = list.shots[0];
  ASSERT_TRUE(fs::exists(s.output)) << s.output;
  auto probe = nlohmann::json::parse(run("ffprobe -v error -count_frames -show_streams -of json '" + s.output.string() + "'"));
  const auto& v = probe["streams"][0];
  EXPECT_EQ(v["codec_name"], "h264");
  EXPECT_EQ(v["width"], 1080);
  EXPECT_EQ(v["nb_read_frames"], "12");

  // Keyframe 0's latents are exactly what the keyframe stage gives for the shot seed (the seed that
  // diffusers' CPU pipeline would use), and the keyframe PNGs are written next to the clip.
  auto kf0 = s.output.parent_path() / (s.output.stem().string() + ".keyframe0.png");
  auto kf1 = s.output.parent_path() / (s.output.stem().string() + ".keyframe1.png");
  ASSERT_TRUE(fs::exists(kf0));
  ASSERT_TRUE(fs::exists(kf1));
  auto model = stages::load_sd_pipeline(model_dir());
  stages::KeyframeRequest r;
  r.prompt = "a photo of a cat";
  r.negative_prompt = "blurry, low quality";
  r.width = r.height = 128;  // native size of the tiny model (sample_size 16 × 8), square preset
  r.steps = 3;
  r.seed = derive_seed(1234, SeedStream::KeyframeLatents, 0);
  EXPECT_EQ(r.seed, 1234u);
  c10::InferenceMode guard;
  auto direct = stages::generate_keyframe(model, r);
  auto png = stages::read_image(kf0);
  ASSERT_EQ(png.width, 128);
  ASSERT_EQ(png.height, 128);
  auto expect = direct.image[0].mul(255).round().clamp(0, 255).to(torch::kByte).permute({1, 2, 0}).contiguous();
  EXPECT_EQ(0, std::memcmp(expect.data_ptr(), png.rgb.data(), png.rgb.size()));
}

TEST(DiffusionRender, ClearErrorsForWrongModelFolders) {
  // A component folder instead of the pipeline root.
  try {
    stages::load_sd_pipeline(fs::path(model_dir()) / "unet");
    FAIL() << "expected an error";
  } catch (const ModelLoadError& e) {
    EXPECT_NE(std::string(e.what()).find("not a diffusers pipeline folder"), std::string::npos) << e.what();
  }
  // A folder that is not a model at all.
  try {
    stages::load_sd_pipeline(test::data_dir() / "configs");
    FAIL() << "expected an error";
  } catch (const ModelLoadError& e) {
    EXPECT_NE(std::string(e.what()).find("no model_index.json"), std::string::npos) << e.what();
  }
  // A video pipeline named as a keyframe model.
  auto dir = test::scratch_dir("diffusion_render_video");
  std::ofstream(dir / "model_index.json") << R"({"_class_name": "StableVideoDiffusionPipeline", "unet": ["diffusers", "UNetSpatioTemporalConditionModel"]})";
  try {
    stages::load_sd_pipeline(dir);
    FAIL() << "expected an error";
  } catch (const ModelLoadError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot make keyframes"), std::string::npos) << e.what();
  }
  // A missing component.
  auto dir2 = test::scratch_dir("diffusion_render_missing");
  std::ofstream(dir2 / "model_index.json") << R"({"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"]})";
  try {
    stages::load_sd_pipeline(dir2);
    FAIL() << "expected an error";
  } catch (const ModelLoadError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer"), std::string::npos) << e.what();
  }
}


TEST(DiffusionRender, PrecisionThroughTheCli) {
  // --precision bf16 renders the tiny SD shot with the models in bf16: the keyframe equals the keyframe
  // stage run directly in bf16 (not the fp32 one); fp16 on a CPU-only run fails the shot with a clear error.
  auto dir = test::scratch_dir("diffusion_render_precision");
  const auto presets = test::write_test_preset(dir / "presets", "tiny-square", 64, 64);
  write_shot(dir, R"(id: tiny
preset: tiny-square
frames: 2
seed: 99
prompt: "a photo of a cat"
sampler: {name: euler, steps: 2, guidance: 7.5}
models: {keyframe: )" + model_dir() + R"(}
)");
  const auto shot = dir / "shot.yaml";
  auto r = test::run_shot(shot, presets, dir / "out", " --precision bf16 --json-report " +
                          test::quote(dir / "report.json"));
  ASSERT_EQ(r.code, 0) << r.out;
  const auto report = nlohmann::json::parse(std::ifstream(dir / "report.json"));
  EXPECT_EQ(report["shots"][0]["devices"], nlohmann::json::array({"cpu"}));
  EXPECT_EQ(report["shots"][0]["precision"], nlohmann::json({{"cpu", "bf16"}}));
  auto png = stages::read_image(dir / "out" / "tiny.keyframe0.png");
  ASSERT_EQ(png.width, 128);
  auto got = torch::from_blob(png.rgb.data(), {128, 128, 3}, torch::kByte).permute({2, 0, 1}).to(torch::kInt);

  c10::InferenceMode guard;
  stages::KeyframeRequest q;
  q.prompt = "a photo of a cat";
  q.width = q.height = 128;
  q.steps = 2;
  q.seed = derive_seed(99, SeedStream::KeyframeLatents, 0);
  auto model = stages::load_sd_pipeline(model_dir());
  auto fp32 = stages::generate_keyframe(model, q).image[0].mul(255).round().to(torch::kInt);
  model.to(torch::kCPU, torch::kBFloat16);
  auto bf16 = stages::generate_keyframe(model, q).image[0].mul(255).round().to(torch::kInt);
  EXPECT_LE((got - bf16).abs().max().item<int>(), 1);
  EXPECT_GT((got - fp32).abs().max().item<int>(), 1);  // the CLI really ran bf16

  // The plan says what the models run in; fp16 on a CPU-only run fails at planning, before any model loads.
  auto dry = test::run_shot(shot, presets, dir / "out-dry", " --precision bf16 --dry-run");
  EXPECT_EQ(dry.code, 0) << dry.out;
  EXPECT_NE(dry.out.find("  models in bf16 on cpu\n"), std::string::npos) << dry.out;
  auto h = test::run_shot(shot, presets, dir / "out-fp16", " --precision fp16");
  EXPECT_NE(h.code, 0) << h.out;
  EXPECT_NE(h.out.find("shot 'tiny': precision fp16 needs a CUDA device"), std::string::npos) << h.out;
  EXPECT_EQ(h.out.find("keyframes"), std::string::npos) << "nothing may start: " << h.out;
}

TEST(DiffusionRender, ModelCacheReleasesLeastRecentlyUsedModelsNoShotHolds) {
  // Limit 2 per device: a third model releases the least recently used one that no shot holds; a model in
  // use is never released (the limit is exceeded instead); other devices and precisions count apart.
  auto dir = test::scratch_dir("diffusion_render_cache");
  auto ref = [](const fs::path& p) {
    configs::ModelRef r;
    r.kind = configs::ModelRef::Kind::DiffusersFolder;
    r.path = p;
    r.spec = p.string();
    return r;
  };
  const auto sd15 = ref(model_dir()), sd21 = ref(test::tiny_sd21(dir / "sd21")), sdxl = ref(test::tiny_sdxl(dir / "sdxl"));
  const c10::Device cpu(c10::kCPU);
  pipeline::ModelCache cache(2);
  auto key_of = [](const configs::ModelRef& r) { return "sd " + fs::weakly_canonical(r.path).string() + "@cpu@fp32"; };
  auto a = cache.sd(sd15, cpu);
  auto b = cache.sd(sd21, cpu);
  EXPECT_EQ(cache.resident("cpu"), (std::vector<std::string>{key_of(sd15), key_of(sd21)}));
  // Both held: a third loads anyway (3 resident) and nothing is released.
  auto c = cache.sd(sdxl, cpu);
  EXPECT_EQ(cache.resident("cpu").size(), 3u);
  // The shots holding a and c end (b's goes on). Loading sd15 in bf16, another model, must bring the
  // cpu below the limit first: it releases the unheld ones, least recently used first (c, then a, even
  // though a was used more recently), never b.
  EXPECT_EQ(cache.sd(sd15, cpu).get(), a.get());  // a hit, and a is now the most recently used
  a.reset();
  c.reset();
  auto a16 = cache.sd(sd15, cpu, c10::kBFloat16);
  EXPECT_EQ(a16->dtype(), c10::kBFloat16);
  EXPECT_EQ(cache.resident("cpu"),
            (std::vector<std::string>{key_of(sd21), "sd " + fs::weakly_canonical(sd15.path).string() + "@cpu@bf16"}));
  // The released fp32 model loads again when asked for (a new object, in fp32), releasing the unheld bf16.
  a16.reset();
  auto again = cache.sd(sd15, cpu);
  EXPECT_EQ(again->dtype(), c10::kFloat);
  EXPECT_EQ(cache.resident("cpu"), (std::vector<std::string>{key_of(sd21), key_of(sd15)}));
  EXPECT_TRUE(cache.resident("cuda:0").empty());
}
