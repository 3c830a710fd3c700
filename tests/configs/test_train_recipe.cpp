// configs::load_train_recipe: the shipped recipe resolves; mistakes are located (file:line:col and key).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "configs/train_recipe.h"
#include "core/error.h"
#include "tests/test_util.h"

using namespace clipgen;
namespace fs = std::filesystem;

TEST(TrainRecipe, ShippedRecipeResolves) {
  const fs::path file = fs::path(CLIPGEN_SOURCE_DIR) / "configs" / "train" / "clipgen-tiny.yaml";
  const auto r = configs::load_train_recipe(file);
  EXPECT_EQ(r.name, "clipgen-tiny");
  EXPECT_EQ(fs::weakly_canonical(r.output), fs::weakly_canonical(fs::path(CLIPGEN_SOURCE_DIR) / "models" / "builtin" / "clipgen-tiny"));
  EXPECT_EQ(r.width, 64);
  EXPECT_EQ(r.height, 112);
  EXPECT_GT(r.vae.steps, 0);
  EXPECT_GT(r.unet.steps, 0);
  const auto unet = nlohmann::json::parse(r.unet.model_config);
  EXPECT_EQ(unet["cross_attention_dim"], 64);
  EXPECT_EQ(unet["down_block_types"].size(), 3u);
  const auto sched = nlohmann::json::parse(r.scheduler_config);
  EXPECT_EQ(sched["rescale_betas_zero_snr"], true);
  EXPECT_DOUBLE_EQ(sched["beta_start"].get<double>(), 0.00085);
  EXPECT_EQ(sched["_class_name"], "DDIMScheduler");
  EXPECT_GE(r.sample_prompts.size(), 8u);
}

TEST(TrainRecipe, MistakesAreLocated) {
  const auto dir = test::scratch_dir("train_recipe_bad");
  test::write_file(dir / "r.yaml",
                   "output: out\nraster: {width: 60, height: 112}\nvae:\n  steps: 0\n  btach: 4\n  config: {}\n"
                   "unet: {steps: 10, config: []}\ntext_encoder: {config: {}}\nscheduler: {}\nsamples: {prompts: []}\n");
  const auto msg = test::error_message<ConfigError>([&] { configs::load_train_recipe(dir / "r.yaml"); });
  const std::string f = (dir / "r.yaml").string();
  EXPECT_NE(msg.find(f + ":2:9: raster: expected sides that are multiples of 16"), std::string::npos) << msg;
  EXPECT_NE(msg.find(f + ":4:10: vae.steps: expected an integer from 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find(f + ":5:3: vae.btach: unknown key (did you mean 'batch'?)"), std::string::npos) << msg;
  EXPECT_NE(msg.find(f + ":7:27: unet.config: expected a mapping"), std::string::npos) << msg;
  EXPECT_NE(msg.find(":10:20: samples.prompts: expected at least one prompt, got an empty list"), std::string::npos) << msg;
}
