// A 2-keyframe shot longer than one temporal-model run renders end to end with a Stable Video Diffusion
// folder (tests/data/models/tiny-svd: the reference fixtures' SVD components) and a Stable Diffusion
// keyframe model (tests/data/models/tiny-sd15).
//
// What is checked, each against something computed independently of the renderer:
//  - segment boundaries: where docs/temporal.md's rules put them (worked out by hand below);
//  - conditioning and seeds: a segment equals a direct stages::generate_segment call with the image the
//    design says (keyframe PNG or the previous segment's frame) and segment_seed(shot seed, s);
//  - blending: every delivered frame is the weighted mix of the segment frames the design says;
//  - the CLI: `clipgen run` writes a file with the shot's frame count and duration (ffprobe).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "configs/shot.h"
#include "core/error.h"
#include "models/rng.h"
#include "pipeline/diffusion_renderer.h"
#include "pipeline/render.h"
#include "stages/contact_sheet.h"
#include "stages/image_io.h"
#include "stages/keyframe.h"
#include "stages/segments.h"
#include "stages/temporal.h"
#include "tests/test_util.h"

using namespace clipgen;
namespace fs = std::filesystem;

namespace {

std::string models(const char* name) { return (test::data_dir() / "models" / name).string(); }

// 40 output frames at 14 fps = 20 generation frames at 7 fps; keyframe 1 at output frame 20 = generation
// frame 10. Segments of 6 frames, overlap 1, transition 2 (6 ≥ 1 + 2 + max(1, 2)).
fs::path write_shot(const fs::path& dir, const std::string& continuity = "0") {
  auto f = dir / "shot.yaml";
  std::ofstream(f) << R"(version: 1
id: tiny-video
preset: square
fps: 14
frames: 40
seed: 4242
prompt: "a photo of a cat"
keyframes:
  - at: 0
  - at: f20
    prompt: "a photo of a dog"
sampler: {name: euler, steps: 2, guidance: 7.5}
motion: {num_frames: 6, overlap: 1, transition_frames: 2, steps: 2, decode_chunk: 4, generation_fps: 7, continuity: )" + continuity + R"(}
post: {retime: dup}
models: {keyframe: )" + models("tiny-sd15") + R"(, temporal: )" + models("tiny-svd") + R"(}
)";
  return f;
}

// Wraps the real renderer and keeps what its temporal and decode stages return.
class Recorder final : public pipeline::ShotRenderer {
public:
  explicit Recorder(std::shared_ptr<pipeline::ShotRenderer> r) : real_(std::move(r)) {}
  std::string name() const override { return real_->name(); }
  pipeline::GenerationPlan plan(const configs::Shot& s) const override { return real_->plan(s); }
  pipeline::Conditioning encode_text(pipeline::ShotJob j, pipeline::StageContext& c) override {
    return real_->encode_text(std::move(j), c);
  }
  pipeline::KeyframeLatents keyframes(pipeline::Conditioning cond, pipeline::StageContext& c) override {
    auto kf = real_->keyframes(std::move(cond), c);
    keyframe_images = kf.extra.at("images").clone();
    return kf;
  }
  pipeline::SegmentLatents temporal(const pipeline::KeyframeLatents& kf, int s, const pipeline::SegmentLatents* prev,
                                    pipeline::StageContext& c) override {
    if (s == fail_at) throw Error("simulated failure before segment " + std::to_string(s));
    auto seg = real_->temporal(kf, s, prev, c);
    std::lock_guard g(m);
    ranges[s] = {seg.first_frame, seg.frames};
    frames[s] = seg.extra.at("frames").clone();
    return seg;
  }
  pipeline::FrameBatch decode(const pipeline::ShotLatents& l, int b, pipeline::StageContext& c) override {
    auto out = real_->decode(l, b, c);
    std::lock_guard g(m);
    for (size_t i = 0; i < out.frames.size(); ++i) decoded[out.first_frame + static_cast<int64_t>(i)] = out.frames[i];
    return out;
  }

  int fail_at = -1;  // temporal() throws for this segment (a crash mid-shot)
  std::mutex m;
  at::Tensor keyframe_images;
  std::map<int, std::pair<int64_t, int64_t>> ranges;
  std::map<int, at::Tensor> frames;  // uint8 [F, H, W, 3]
  std::map<int64_t, stages::Frame> decoded;

private:
  std::shared_ptr<pipeline::ShotRenderer> real_;
};

// Renders `shot_file` with a Recorder around the real diffusion renderer.
std::shared_ptr<Recorder> render_recorded(const configs::ShotList& list, const fs::path& out_root, int fail_at = -1) {
  auto recorder = std::make_shared<Recorder>(
      std::make_shared<pipeline::DiffusionRenderer>(std::make_shared<pipeline::ModelCache>()));
  recorder->fail_at = fail_at;
  pipeline::RenderOptions opt;
  opt.out_root = out_root;
  opt.renderer_for = [&](const configs::Shot&) { return recorder; };
  pipeline::RunReport report;
  pipeline::render_shots(list, opt, report);
  return recorder;
}

// Segment s of the test shot made directly: the image it should be conditioned on, its derived seed,
// the shot's motion settings; frames as uint8 [F, H, W, 3].
at::Tensor direct_segment(stages::SVDModel& svd, const at::Tensor& image, int s) {
  stages::SegmentRequest r;
  r.image = image;
  r.width = r.height = 64;
  r.num_frames = 6;
  r.steps = 2;
  r.decode_chunk = 4;
  r.seed = derive_seed(4242, SeedStream::SegmentLatents, static_cast<uint64_t>(s));
  auto out = stages::generate_segment(svd, r);
  return out.frames[0].mul(255).round().clamp(0, 255).to(torch::kByte).permute({0, 2, 3, 1}).contiguous();
}

at::Tensor hwc(const stages::Frame& f) {
  return torch::from_blob(const_cast<uint8_t*>(f.rgb.data()), {f.height, f.width, 3}, torch::kByte).clone();
}

}  // namespace

TEST(VideoRender, RasterKeepsTheModelsPixelArea) {
  configs::Preset vertical;
  vertical.width = 1080;
  vertical.height = 1920;
  configs::Preset hd;
  hd.width = 1920;
  hd.height = 1080;
  // SVD: UNet sample_size 96 × VAE factor 8 = 768; trained at 1024×576.
  EXPECT_EQ(pipeline::video_generation_raster(hd, 768), std::make_pair(1024, 576));
  EXPECT_EQ(pipeline::video_generation_raster(vertical, 768), std::make_pair(576, 1024));
}

TEST(VideoRender, TwoKeyframesSeveralSegments) {
  auto dir = test::scratch_dir("video_render");
  auto shot_file = write_shot(dir);
  auto list = configs::load_shots({shot_file}, {.out_root = dir / "renders"});
  ASSERT_EQ(list.shots.size(), 1u);
  const auto& shot = list.shots[0];

  const auto plan = pipeline::DiffusionRenderer(std::make_shared<pipeline::ModelCache>()).plan(shot);
  EXPECT_EQ(plan.frames, 20);
  EXPECT_EQ(plan.fps.num, 7);
  EXPECT_EQ(plan.width, 64);  // tiny SVD: native 8 × 8 = 64 px, square preset
  EXPECT_EQ(plan.height, 64);
  EXPECT_EQ(plan.segments, 5);
  auto recorder = render_recorded(list, dir / "renders");

  // Segment boundaries by docs/temporal.md, worked out by hand for 20 frames, F 6, o 1, t 2, keyframes 0 and 10:
  //   seg 0 [0, 6) from keyframe 0; seg 1 starts 0 + 6 − 1 = 5 (overlap at 5); seg 1 ends at 11 < 10 + 2, so
  //   seg 2 starts at min(5 + 5, 10 − 1) = 9 (overlap at 9); seg 3 starts at 10 from keyframe 1 (transition
  //   10..11 with seg 2); seg 3 ends at 16 < 20: seg 4 at min(15, 20 − 1) = 15 (overlap at 15), to the end.
  //   Used lengths: 6, 5, 3, 6, 5.
  const std::map<int, std::pair<int64_t, int64_t>> expected = {{0, {0, 6}}, {1, {5, 5}}, {2, {9, 3}}, {3, {10, 6}}, {4, {15, 5}}};
  EXPECT_EQ(recorder->ranges, expected);
  ASSERT_EQ(recorder->frames.size(), 5u);
  for (auto& [s, f] : recorder->frames) EXPECT_EQ(f.sizes(), (std::vector<int64_t>{6, 64, 64, 3})) << "segment " << s;

  // Conditioning and seeds: segment 1 is generate_segment from segment 0's frame 5; segment 3 from keyframe 1.
  {
    c10::InferenceMode guard;
    auto svd = stages::load_svd_pipeline(models("tiny-svd"));
    auto direct = [&](const at::Tensor& image, int s) { return direct_segment(svd, image, s); };
    EXPECT_TRUE(torch::equal(direct(recorder->frames[0][5], 1), recorder->frames[1]));
    auto kf1 = stages::read_image(shot.output.parent_path() / (shot.output.stem().string() + ".keyframe1.png"));
    auto kf1_t = torch::from_blob(kf1.rgb.data(), {kf1.height, kf1.width, 3}, torch::kByte).clone();
    EXPECT_EQ(kf1.width, 128);  // keyframes at the tiny SD model's own raster; the segment resizes it
    EXPECT_TRUE(torch::equal(direct(kf1_t, 3), recorder->frames[3]));
    // Different segments really differ (the comparison above can fail).
    EXPECT_FALSE(torch::equal(recorder->frames[1], recorder->frames[3]));
  }

  // Blending: weights (i + 1) / (w + 1) for the later segment inside its window, computed here.
  ASSERT_EQ(recorder->decoded.size(), 20u);
  auto px = [&](int s, int64_t local) { return recorder->frames[s][local].to(torch::kDouble); };
  std::map<int64_t, at::Tensor> want;
  for (int64_t f = 0; f < 5; ++f) want[f] = px(0, f);
  want[5] = px(0, 5) * 0.5 + px(1, 0) * 0.5;
  for (int64_t f = 6; f < 9; ++f) want[f] = px(1, f - 5);
  want[9] = px(1, 4) * 0.5 + px(2, 0) * 0.5;
  want[10] = px(2, 1) * (2.0 / 3) + px(3, 0) * (1.0 / 3);
  want[11] = px(2, 2) * (1.0 / 3) + px(3, 1) * (2.0 / 3);
  for (int64_t f = 12; f < 15; ++f) want[f] = px(3, f - 10);
  want[15] = px(3, 5) * 0.5 + px(4, 0) * 0.5;
  for (int64_t f = 16; f < 20; ++f) want[f] = px(4, f - 15);
  for (auto& [f, w] : want) {
    auto got = hwc(recorder->decoded.at(f)).to(torch::kDouble);
    EXPECT_LE((got - w).abs().max().item<double>(), 0.5 + 1e-9) << "frame " << f;
  }

  // The delivered file: 40 frames at 14 fps, 1080×1080.
  ASSERT_TRUE(fs::exists(shot.output));
  auto probe = test::ffprobe(shot.output);
  const auto& v = probe["streams"][0];
  EXPECT_EQ(v["nb_read_frames"], "40");
  EXPECT_EQ(v["width"], 1080);
  EXPECT_EQ(v["r_frame_rate"], "14/1");
  EXPECT_NEAR(std::stod(probe["format"]["duration"].get<std::string>()), 40.0 / 14, 0.05);
}

// motion.continuity: keyframe 1 is remade by img2img from the frame the previous section shows at its
// position (generation frame 10 = segment 2's local frame 1), and segment 3 starts from that image.
TEST(VideoRender, ContinuityRemakesTheNextKeyframeFromThePreviousSection) {
  auto dir = test::scratch_dir("video_render_continuity");
  auto list = configs::load_shots({write_shot(dir, "0.6")}, {.out_root = dir / "renders"});
  const auto& shot = list.shots[0];
  auto recorder = render_recorded(list, dir / "renders");
  ASSERT_EQ(recorder->frames.size(), 5u);

  c10::InferenceMode guard;
  auto sd = stages::load_sd_pipeline(models("tiny-sd15"));
  const auto from = recorder->frames[2][1].contiguous();  // uint8 [64, 64, 3]
  std::vector<uint8_t> rgb(from.data_ptr<uint8_t>(), from.data_ptr<uint8_t>() + from.numel());
  stages::KeyframeRequest r;
  r.prompt = "a photo of a dog";
  r.width = r.height = 128;
  r.steps = 2;
  r.init_image = stages::image_to_tensor(rgb, 64, 64, 128, 128);
  r.strength = 0.6;
  r.seed = derive_seed(4242, SeedStream::KeyframeLatents, 1);
  auto remade = stages::generate_keyframe(sd, r);
  auto want = remade.image[0].mul(255).round().clamp(0, 255).to(torch::kByte).permute({1, 2, 0}).contiguous();
  auto png = stages::read_image(shot.output.parent_path() / (shot.output.stem().string() + ".keyframe1.png"));
  ASSERT_EQ(png.width, 128);
  EXPECT_EQ(0, std::memcmp(want.data_ptr(), png.rgb.data(), png.rgb.size()));
  // The text-to-image keyframe (what the keyframe stage made) is not what segment 3 started from.
  EXPECT_FALSE(torch::equal(want, recorder->keyframe_images[1].mul(255).round().clamp(0, 255).to(torch::kByte).permute({1, 2, 0})));

  auto svd = stages::load_svd_pipeline(models("tiny-svd"));
  EXPECT_TRUE(torch::equal(direct_segment(svd, want, 3), recorder->frames[3]));

  // The contact sheet shows the keyframes as delivered: exactly the sheet drawn from the two PNGs.
  auto kf0 = stages::read_image(shot.output.parent_path() / (shot.output.stem().string() + ".keyframe0.png"));
  std::vector<stages::ContactSheetEntry> entries = {{&kf0, 0.0, 0, "a photo of a cat"}, {&png, 20.0 / 14, 20, "a photo of a dog"}};
  auto sheet = stages::render_contact_sheet("tiny-video", "", entries);
  auto written = stages::read_image(shot.output.parent_path() / (shot.output.stem().string() + ".contact.png"));
  ASSERT_EQ(written.width, sheet.width);
  ASSERT_EQ(written.height, sheet.height);
  EXPECT_EQ(written.rgb, sheet.rgb);
}

// A failure in the middle of the temporal stage loses nothing: the rerun restores the finished
// segments from their checkpoints (no model call for them) and delivers the same frames as an
// uninterrupted render.
TEST(VideoRender, RerunAfterAFailureResumesFromTheFinishedSegments) {
  auto whole_dir = test::scratch_dir("video_render_whole");
  auto whole_list = configs::load_shots({write_shot(whole_dir)}, {.out_root = whole_dir / "renders"});
  auto whole = render_recorded(whole_list, whole_dir / "renders");

  auto dir = test::scratch_dir("video_render_resume");
  auto list = configs::load_shots({write_shot(dir)}, {.out_root = dir / "renders"});
  EXPECT_THROW(render_recorded(list, dir / "renders", 3), Error);
  EXPECT_FALSE(fs::exists(list.shots[0].output));
  auto again = render_recorded(list, dir / "renders");
  std::vector<int> generated;
  for (auto& [s, r] : again->ranges) generated.push_back(s);
  EXPECT_EQ(generated, (std::vector<int>{3, 4}));  // 0, 1, 2 restored
  EXPECT_FALSE(again->keyframe_images.defined());   // keyframes restored too
  ASSERT_EQ(again->decoded.size(), whole->decoded.size());
  for (auto& [f, frame] : whole->decoded)
    EXPECT_TRUE(torch::equal(hwc(frame), hwc(again->decoded.at(f)))) << "frame " << f;
  EXPECT_TRUE(fs::exists(list.shots[0].output));
}

TEST(VideoRender, CliRendersTheShot) {
  auto dir = test::scratch_dir("video_render_cli");
  auto shot_file = write_shot(dir);
  const fs::path bin = fs::path(CLIPGEN_BINARY_DIR) / "cli" / "clipgen";
  std::string out;
  ASSERT_NO_THROW(out = test::run_command("NO_COLOR=1 " + test::quote(bin) + " run " + test::quote(shot_file) +
                                          " --out " + test::quote(dir / "renders") + " 2>&1"));
  auto list = configs::load_shots({shot_file}, {.out_root = dir / "renders"});
  const auto& output = list.shots[0].output;
  ASSERT_TRUE(fs::exists(output)) << out;
  auto probe = test::ffprobe(output);
  EXPECT_EQ(probe["streams"][0]["nb_read_frames"], "40");
  EXPECT_NEAR(std::stod(probe["format"]["duration"].get<std::string>()), 40.0 / 14, 0.05);
}

// examples/vertical-svd.yaml plans as its comments say, with the real SD1.5 and SVD-XT configs from the
// manifests standing in for the model folders (plan() reads configs only, no weights).
TEST(VideoRender, VerticalExamplePlansAsDocumented) {
  auto dir = test::scratch_dir("video_render_example");
  fs::create_directories(dir / "examples");
  fs::copy_file(fs::path(CLIPGEN_SOURCE_DIR) / "examples" / "vertical-svd.yaml", dir / "examples" / "vertical-svd.yaml");
  auto stand_in = [&](const char* name, const char* manifest, const std::string& index) {
    const auto root = dir / "models" / name;
    fs::create_directories(root);
    std::ofstream(root / "model_index.json") << index;
    for (const char* c : {"unet", "vae"}) {
      fs::create_directories(root / c);
      fs::copy_file(test::manifest_dir(manifest) / c / "config.json", root / c / "config.json");
    }
  };
  stand_in("stable-diffusion-v1-5", "sd15",
           R"({"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
               "vae": ["diffusers", "AutoencoderKL"]})");
  stand_in("stable-video-diffusion-img2vid-xt", "svd_xt",
           R"({"_class_name": "StableVideoDiffusionPipeline", "unet": ["diffusers", "UNetSpatioTemporalConditionModel"],
               "vae": ["diffusers", "AutoencoderKLTemporalDecoder"],
               "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
               "scheduler": ["diffusers", "EulerDiscreteScheduler"]})");
  auto list = configs::load_shots({dir / "examples" / "vertical-svd.yaml"}, {.out_root = dir / "renders"});
  const auto& shot = list.shots.at(0);
  EXPECT_EQ(pipeline::keyframe_raster(shot), std::make_pair(512, 896));
  const auto plan = pipeline::DiffusionRenderer(std::make_shared<pipeline::ModelCache>()).plan(shot);
  EXPECT_EQ(plan.width, 576);
  EXPECT_EQ(plan.height, 1024);
  EXPECT_EQ(plan.frames, 42);  // 6 s × 7 fps
  // Keyframe 1 at 3.5 s = generation frame round(24.5) = 25. F 25, o 3, t 6: segment 0 [0, 25) ends before
  // 25 + 6, so segment 1 is chained at min(22, 25 − 3) = 22; keyframe 1's segment at 25 reaches the end.
  EXPECT_EQ(plan.segments, 3);  // (the example leaves motion.num_frames to the model: SVD-XT's config says 25)
  EXPECT_EQ(shot.motion.num_frames, 0);
  // A model with another trained length plans with it. 16 frames: segment 0 [0, 16) ends before 25 + 6, so
  // chain at min(13, 22) = 13, which ends at 29 < 31: chain at min(26, 22) = 22; keyframe 1's segment at 25 ends
  // at 41 < 42: chain at min(38, 42 − 3) = 38. Five segments.
  const auto unet_json = dir / "models/stable-video-diffusion-img2vid-xt/unet/config.json";
  auto with_frames = [&](int n) {
    auto cfg = nlohmann::json::parse(std::ifstream(unet_json));
    cfg["num_frames"] = n;
    std::ofstream(unet_json) << cfg.dump();
    return pipeline::DiffusionRenderer(std::make_shared<pipeline::ModelCache>()).plan(shot);
  };
  EXPECT_EQ(with_frames(16).segments, 5);
  // SVD's 14 cannot hold this shot's overlap 3 + transition 6 windows: a clear error at plan time.
  try {
    with_frames(14);
    FAIL() << "expected an error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("motion.num_frames 14 is too short for overlap 3 and transition_frames 6"),
              std::string::npos) << e.what();
  }
}

TEST(VideoRender, WrongTemporalModelIsAClearError) {
  auto dir = test::scratch_dir("video_render_wrong");
  auto f = dir / "shot.yaml";
  std::ofstream(f) << "version: 1\nid: wrong\npreset: square\nframes: 10\nprompt: x\nmodels: {keyframe: " +
                          models("tiny-sd15") + ", temporal: " + models("tiny-sd15") + "}\n";
  auto list = configs::load_shots({f}, {.out_root = dir / "renders"});
  pipeline::DiffusionRenderer r(std::make_shared<pipeline::ModelCache>());
  try {
    r.plan(list.shots[0]);
    FAIL() << "expected an error";
  } catch (const ModelLoadError& e) {
    EXPECT_NE(std::string(e.what()).find("StableVideoDiffusionPipeline"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model_index.json"), std::string::npos) << e.what();
  }
}
