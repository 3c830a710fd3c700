// The configs inferred from the single_file/* fixtures build the model classes (UNet2DConditionModel,
// AutoencoderKL, CLIPTextModel[WithProjection]) into which the mapped tensors load strictly: every
// parameter present, no extra tensor, every shape equal. The hyperparameters that shapes cannot tell
// come from fixture.json (as the fixture runner takes them).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/autoencoder_kl.h"
#include "models/clip_text_model.h"
#include "models/io/diffusers_folder.h"
#include "models/io/single_file.h"
#include "models/io/state_dict.h"
#include "models/unet_2d_condition.h"
#include "tests/test_util.h"

using namespace clipgen;

namespace {
io::SingleFileOverrides fixture_overrides(const nlohmann::json& fx) {
  io::SingleFileOverrides ov;
  const auto& h = fx["hyperparameters_not_in_shapes"];
  const auto& u = h["unet"];
  if (fx["family"] == "sd1") ov.unet_heads = u["attention_heads_per_level"].begin()->get<int>();
  else ov.unet_head_channels = u["head_dim_per_level"].begin()->get<int>();
  ov.unet_norm_num_groups = u["norm_num_groups"].get<int>();
  ov.unet_upcast_attention = u["upcast_attention"].get<bool>();
  ov.vae_scaling_factor = h["vae"]["scaling_factor (pipeline setting)"].get<double>();
  ov.text_encoder_heads = h["text_encoder"]["num_attention_heads"].get<int>();
  if (h.contains("text_encoder_2")) ov.text_encoder_2_heads = h["text_encoder_2"]["num_attention_heads"].get<int>();
  return ov;
}
}  // namespace

class SingleFileModels : public ::testing::TestWithParam<std::string> {};

TEST_P(SingleFileModels, InferredConfigsBuildModelsTheTensorsLoadInto) {
  const auto dir = test::fixture_dir("single_file/" + GetParam());
  auto fx = io::read_json(dir / "fixture.json");
  auto ck = io::load_single_file(dir / "model.safetensors", fixture_overrides(fx));
  const std::string src = (dir / "model.safetensors").string();

  UNet2DConditionModel unet(UNet2DConditionConfig::from_json(ck.plan.configs.at("unet"), "inferred unet config"));
  EXPECT_NO_THROW(io::load_state_dict(*unet, ck.components.at("unet"), src));
  AutoencoderKL vae(AutoencoderKLConfig::from_json(ck.plan.configs.at("vae"), "inferred vae config"));
  EXPECT_NO_THROW(io::load_state_dict(*vae, ck.components.at("vae"), src));
  CLIPTextModel te(CLIPTextConfig::from_json(ck.plan.configs.at("text_encoder"), "inferred text_encoder config"));
  EXPECT_NO_THROW(io::load_state_dict(*te, ck.components.at("text_encoder"), src));
  if (ck.components.count("text_encoder_2")) {
    CLIPTextModelWithProjection te2(
        CLIPTextConfig::from_json(ck.plan.configs.at("text_encoder_2"), "inferred text_encoder_2 config"));
    EXPECT_NO_THROW(io::load_state_dict(*te2, ck.components.at("text_encoder_2"), src));
  }
  // A loaded value is the file's (float16 → float32 exact).
  auto w = io::module_state(*vae).at("decoder.mid_block.attentions.0.to_q.weight");
  EXPECT_TRUE(torch::equal(w, ck.components.at("vae").at("decoder.mid_block.attentions.0.to_q.weight").to(torch::kFloat)));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, SingleFileModels, ::testing::Values("sd15", "sd21", "sdxl"));
