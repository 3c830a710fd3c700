// train::PhaseRunner: a step lowers the loss on a fixed batch; a run stopped after a checkpoint and
// resumed in a fresh model ends with exactly the parameters, EMA and loss log of an uninterrupted run.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "configs/train_recipe.h"
#include "models/autoencoder_kl.h"
#include "models/rng.h"
#include "tests/test_util.h"
#include "train/phase_runner.h"
#include "train/scene_batch.h"

using namespace clipgen;
using namespace clipgen::train;
namespace fs = std::filesystem;

namespace {

configs::TrainRecipe tiny() { return configs::load_train_recipe(fs::path(CLIPGEN_TEST_DATA) / "train" / "tiny-recipe.yaml"); }

AutoencoderKL tiny_vae(const configs::TrainRecipe& r, int64_t init_seed) {
  torch::manual_seed(init_seed);
  return AutoencoderKL(AutoencoderKLConfig::from_json(nlohmann::json::parse(r.vae.model_config)));
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The VAE phase's loss (reconstruction of the step's batch through a sampled posterior).
StepLoss vae_loss(AutoencoderKL& vae, SceneBatcher& b, int64_t step) {
  auto batch = b.make(kVaeStream, step, 2);
  auto post = vae->encode(batch.pixels);
  auto gen = make_generator(static_cast<uint64_t>(step) + 17);
  const auto rec = vae->decode(post.mean + post.std * randn(post.mean.sizes(), gen));
  return {(rec - batch.pixels).pow(2).mean(), {{"kl", post.mean.pow(2).mean().item<double>()}}};
}

}  // namespace

TEST(PhaseRunner, OneStepLowersTheLossOnAFixedBatch) {
  torch::set_num_threads(1);
  const auto r = tiny();
  const auto dir = test::scratch_dir("phase_runner_one_step");
  SceneBatcher batcher(r);
  const auto batch = batcher.make(kVaeStream, 0, 4);
  auto vae = tiny_vae(r, 1);
  NamedParams params;
  collect_params(*vae, "", params);
  PhaseOptions o;
  o.name = "vae";
  o.work_dir = dir;
  o.settings = r.vae;
  o.settings.steps = 1;
  o.settings.warmup = 0;
  PhaseRunner runner(o, params);
  EXPECT_EQ(runner.resume(false), 0);
  auto loss = [&] { return (vae->decode(vae->encode(batch.pixels).mean) - batch.pixels).pow(2).mean(); };
  const double before = loss().item<double>();
  ASSERT_TRUE(runner.run([&](int64_t) { return StepLoss{loss(), {}}; }));
  const double after = loss().item<double>();
  EXPECT_LT(after, before * 0.999) << before << " → " << after;
  EXPECT_TRUE(fs::exists(dir / "vae-state.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "vae-loss.csv"));
}

TEST(PhaseRunner, ResumeContinuesBitIdentically) {
  torch::set_num_threads(1);
  const auto r = tiny();
  const auto a = test::scratch_dir("phase_runner_resume_a"), b = test::scratch_dir("phase_runner_resume_b");
  auto options = [&](const fs::path& dir) {
    PhaseOptions o;
    o.name = "vae";
    o.work_dir = dir;
    o.settings = r.vae;
    o.settings.steps = 6;
    return o;
  };
  // Uninterrupted.
  auto va = tiny_vae(r, 1);
  NamedParams pa;
  collect_params(*va, "", pa);
  SceneBatcher ba(r);
  PhaseRunner ra(options(a), pa);
  ra.resume(false);
  ASSERT_TRUE(ra.run([&](int64_t s) { return vae_loss(va, ba, s); }));

  // Stopped at step 3 (after a checkpoint), then resumed in a new process-like setting: a model with
  // other initial weights, a new optimizer, a new batcher.
  {
    auto vb = tiny_vae(r, 1);
    NamedParams pb;
    collect_params(*vb, "", pb);
    SceneBatcher bb(r);
    auto o = options(b);
    o.stop_at_step = 3;
    PhaseRunner rb(o, pb);
    rb.resume(false);
    ASSERT_FALSE(rb.run([&](int64_t s) { return vae_loss(vb, bb, s); }));
    EXPECT_EQ(rb.step(), 3);
  }
  // Rows past the checkpoint (as a killed run leaves them) are rewritten on resume.
  std::ofstream(b / "vae-loss.csv", std::ios::app) << "3,9.9,0,0,0,0\n";
  auto vc = tiny_vae(r, 99);
  NamedParams pc;
  collect_params(*vc, "", pc);
  SceneBatcher bc(r);
  PhaseRunner rc(options(b), pc);
  EXPECT_EQ(rc.resume(false), 3);
  ASSERT_TRUE(rc.run([&](int64_t s) { return vae_loss(vc, bc, s); }));

  ASSERT_EQ(pa.size(), pc.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i].second, pc[i].second)) << pa[i].first;
  const auto ea = ra.export_weights(), ec = rc.export_weights();
  for (const auto& [k, t] : ea) EXPECT_TRUE(torch::equal(t, ec.at(k))) << "EMA " << k;
  // Same losses in the log (the seconds column differs).
  auto losses = [&](const fs::path& p) {
    std::vector<std::string> v;
    std::istringstream in(slurp(p));
    std::string line;
    while (std::getline(in, line)) v.push_back(line.substr(0, line.find(',', line.find(',') + 1)));
    return v;
  };
  EXPECT_EQ(losses(a / "vae-loss.csv"), losses(b / "vae-loss.csv"));
  EXPECT_EQ(losses(a / "vae-loss.csv").size(), 7u);
}

TEST(PhaseRunner, LearningRateWarmsUpThenDecays) {
  configs::TrainPhase p;
  p.lr = 1e-3;
  p.warmup = 10;
  p.steps = 110;
  EXPECT_NEAR(PhaseRunner::lr_at(p, 0), 1e-4, 1e-12);
  EXPECT_NEAR(PhaseRunner::lr_at(p, 9), 1e-3, 1e-12);
  EXPECT_NEAR(PhaseRunner::lr_at(p, 10), 1e-3, 1e-9);
  EXPECT_NEAR(PhaseRunner::lr_at(p, 60), 0.55e-3, 1e-9);
  EXPECT_NEAR(PhaseRunner::lr_at(p, 110), 1e-4, 1e-9);
}
