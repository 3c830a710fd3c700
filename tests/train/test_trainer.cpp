// train::train_keyframe_model end to end at toy sizes: the exported folder is an ordinary diffusers
// StableDiffusionPipeline folder the loaders read (configs checked by the model classes, fp16 weights
// equal to the trained EMA weights); a `clipgen train` killed with SIGKILL mid-run and rerun exports
// exactly the weights of an uninterrupted run.
#include <gtest/gtest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "configs/train_recipe.h"
#include "models/autoencoder_kl.h"
#include "models/clip_text_model.h"
#include "models/io/diffusers_folder.h"
#include "models/io/safetensors.h"
#include "models/tokenizer/clip_tokenizer.h"
#include "models/unet_2d_condition.h"
#include "tests/test_util.h"
#include "train/trainer.h"

using namespace clipgen;
namespace fs = std::filesystem;

extern char** environ;

namespace {

// The tiny recipe with its output and work folders moved under `dir`.
fs::path recipe_in(const fs::path& dir, double checkpoint_minutes = 1000) {
  std::ifstream in(fs::path(CLIPGEN_TEST_DATA) / "train" / "tiny-recipe.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = std::regex_replace(ss.str(), std::regex("output: tiny-out.*"), "output: out\nwork_dir: work");
  text = std::regex_replace(text, std::regex("checkpoint_minutes: [0-9]+"), "checkpoint_minutes: " + std::to_string(checkpoint_minutes));
  test::write_file(dir / "recipe.yaml", text);
  return dir / "recipe.yaml";
}

std::string bytes_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST(Trainer, ExportsAFolderTheDiffusersLoadersRead) {
  torch::set_num_threads(1);
  const auto dir = test::scratch_dir("trainer_export");
  const auto recipe = configs::load_train_recipe(recipe_in(dir));
  train::TrainOptions o;
  o.eval_every = 0;
  const auto res = train::train_keyframe_model(recipe, o);
  ASSERT_TRUE(res.complete);
  EXPECT_EQ(res.vae_steps, 4);
  EXPECT_EQ(res.unet_steps, 4);

  const auto out = dir / "out";
  const auto idx = io::read_pipeline_index(out);
  auto unet = load_unet_2d_condition(idx.component_dir("unet"));
  auto vae = load_autoencoder_kl(idx.component_dir("vae"));
  auto te = load_clip_text_model(idx.component_dir("text_encoder"));
  auto tok = CLIPTokenizer::from_folder(idx.component_dir("tokenizer"));
  EXPECT_EQ(tok.encode("a red ball").size(), 5u);
  EXPECT_EQ(unet->config().block_out_channels, (std::vector<int64_t>{16, 32}));
  EXPECT_GT(vae->scaling_factor(), 0.01);
  EXPECT_NE(vae->scaling_factor(), 1.0) << "the scaling factor is measured on the trained encoder";
  const auto sched = nlohmann::json::parse(bytes_of(out / "scheduler" / "scheduler_config.json"));
  EXPECT_EQ(sched["prediction_type"], "v_prediction");
  EXPECT_EQ(sched["rescale_betas_zero_snr"], true);

  // Stored as fp16; equal to the EMA weights of the training state rounded to fp16.
  const auto unet_file = io::SafetensorsFile::open(idx.component_dir("unet") / "diffusion_pytorch_model.safetensors");
  const auto state = io::SafetensorsFile::open(dir / "work" / "unet-state.safetensors");
  size_t checked = 0;
  for (const auto& info : unet_file->tensors()) {
    const auto stored = unet_file->view(info.name);
    ASSERT_EQ(stored.scalar_type(), torch::kHalf) << info.name;
    EXPECT_TRUE(torch::equal(stored, state->view("ema.unet." + info.name).to(torch::kHalf))) << info.name;
    ++checked;
  }
  EXPECT_EQ(checked, unet->named_parameters().size());
  const auto loaded_w = unet->conv_in->weight;
  EXPECT_EQ(loaded_w.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(loaded_w, state->view("ema.unet.conv_in.weight").to(torch::kHalf).to(torch::kFloat)));

  for (const char* f : {"vae-loss.csv", "vae-loss.png", "unet-loss.csv", "unet-loss.png", "samples.png", "samples.txt"})
    EXPECT_TRUE(fs::exists(dir / "work" / f)) << f;
  // The loss log has one row per step after its header.
  std::ifstream csv(dir / "work" / "unet-loss.csv");
  int rows = 0;
  for (std::string line; std::getline(csv, line);) ++rows;
  EXPECT_EQ(rows, 5);
  (void)te;
}

TEST(Trainer, KilledRunResumesToTheSameWeights) {
  torch::set_num_threads(1);
  const fs::path cli = fs::path(CLIPGEN_BINARY_DIR) / "cli" / "clipgen";
  ASSERT_TRUE(fs::exists(cli)) << "build the clipgen executable first";
  // Uninterrupted, in this process.
  const auto a = test::scratch_dir("trainer_kill_a");
  {
    auto r = configs::load_train_recipe(recipe_in(a));
    train::TrainOptions o;
    o.eval_every = 0;
    o.steps = 16;
    ASSERT_TRUE(train::train_keyframe_model(r, o).complete);
  }
  // The CLI, checkpointing after every step, killed once the UNet phase has a checkpoint; then rerun.
  const auto b = test::scratch_dir("trainer_kill_b");
  const auto recipe = recipe_in(b, 1e-6);
  const std::string path = cli.string(), rec = recipe.string();
  std::vector<std::string> args{path, "--threads", "1", "-q", "train", rec, "--steps", "16", "--eval-every", "0"};
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, path.c_str(), nullptr, nullptr, argv.data(), environ), 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  bool killed = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(b / "work" / "unet-state.safetensors")) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(killed) << "the run never wrote a UNet checkpoint";
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
  ASSERT_FALSE(fs::exists(b / "out" / "model_index.json"));
  {
    auto r = configs::load_train_recipe(recipe);
    train::TrainOptions o;
    o.eval_every = 0;
    o.steps = 16;
    ASSERT_TRUE(train::train_keyframe_model(r, o).complete);
  }
  for (const char* f : {"unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                        "text_encoder/model.safetensors", "vae/config.json"})
    EXPECT_EQ(bytes_of(a / "out" / f), bytes_of(b / "out" / f)) << f;
}
