// UNet2DConditionModel parity with diffusers 0.27.2 on the SD1.5-, SD2.1- and SDXL-style fixtures
// (fixtures/unet2d/*): all three timestep calls and every stored intermediate at Tolerance::model(),
// plus checks that the comparison can fail and that unsupported configs are refused by key.
#include <gtest/gtest.h>

#include <iostream>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/io/diffusers_folder.h"
#include "models/io/state_dict.h"
#include "models/unet_2d_condition.h"
#include "parity/fixture.h"
#include "tests/test_util.h"

using namespace clipgen;

namespace {

void expect_fixture_passes(const std::string& rel, size_t expected_checks) {
  auto res = parity::check_fixture(test::fixture_dir(rel));
  EXPECT_EQ(res.size(), expected_checks) << rel;
  double worst = 0;
  for (const auto& c : res) worst = std::max(worst, c.max_abs_error);
  std::cout << rel << ": " << res.size() << " comparisons, worst max abs error " << worst << "\n";
  for (const auto& c : res)
    EXPECT_TRUE(c.pass) << rel << " " << c.name << " err " << c.max_abs_error << " allowed " << c.allowed << " " << c.note;
}

// Runs the sd15 fixture's timestep_0 call on a UNet built from `cfg_json` with the fixture weights.
at::Tensor run_sd15(const nlohmann::json& cfg_json, const std::function<void(UNet2DConditionModelImpl&)>& tweak = nullptr) {
  torch::NoGradGuard ng;
  auto dir = test::fixture_dir("unet2d/sd15");
  UNet2DConditionModel unet(UNet2DConditionConfig::from_json(cfg_json));
  io::load_weights_into(*unet, dir / "diffusion_pytorch_model.safetensors");
  if (tweak) tweak(*unet);
  auto in = io::load_safetensors(dir / "inputs.safetensors");
  return unet(in.at("sample"), in.at("timestep_0"), in.at("encoder_hidden_states"));
}

at::Tensor sd15_ref() { return io::load_safetensors(test::fixture_dir("unet2d/sd15") / "outputs.safetensors").at("sample_0"); }

std::string unsupported_message(nlohmann::json cfg) {
  try {
    UNet2DConditionConfig::from_json(cfg, "cfg.json");
  } catch (const UnsupportedError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// 3 calls + 10 intermediates (time_proj, time_embedding, conv_in, 2 down, mid, 2 up, conv_norm_out, conv_out).
TEST(UNet2DCondition, SD15FixturePasses) { expect_fixture_passes("unet2d/sd15", 13); }
TEST(UNet2DCondition, SD21FixturePasses) { expect_fixture_passes("unet2d/sd21", 13); }
// + add_time_proj and add_embedding.
TEST(UNet2DCondition, SDXLFixturePasses) { expect_fixture_passes("unet2d/sdxl", 15); }

TEST(UNet2DCondition, FlipSinToCosToggledFails) {
  auto cfg = io::read_json(test::fixture_dir("unet2d/sd15") / "config.json");
  auto good = parity::compare_tensors("sample_0", run_sd15(cfg), sd15_ref(), parity::Tolerance::model());
  EXPECT_TRUE(good.pass) << good.max_abs_error;
  cfg["flip_sin_to_cos"] = !cfg["flip_sin_to_cos"].get<bool>();
  auto bad = parity::compare_tensors("sample_0", run_sd15(cfg), sd15_ref(), parity::Tolerance::model());
  EXPECT_FALSE(bad.pass) << bad.max_abs_error;
}

TEST(UNet2DCondition, PerturbedCrossAttentionWeightFails) {
  auto cfg = io::read_json(test::fixture_dir("unet2d/sd15") / "config.json");
  auto out = run_sd15(cfg, [](UNet2DConditionModelImpl& u) {
    auto p = u.named_parameters()["down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"];
    p.mul_(1.01);
  });
  auto bad = parity::compare_tensors("sample_0", out, sd15_ref(), parity::Tolerance::model());
  EXPECT_FALSE(bad.pass) << bad.max_abs_error;
}

TEST(UNet2DCondition, AttentionHeadDimIsTheHeadCount) {
  // Interpreting attention_head_dim 8 as a head size (32/8 = 4 heads) changes the result.
  auto cfg = io::read_json(test::fixture_dir("unet2d/sd15") / "config.json");
  cfg["num_attention_heads"] = 4;
  auto bad = parity::compare_tensors("sample_0", run_sd15(cfg), sd15_ref(), parity::Tolerance::model());
  EXPECT_FALSE(bad.pass) << bad.max_abs_error;
}

TEST(UNet2DCondition, UnsupportedConfigValuesNameTheKey) {
  auto base = io::read_json(test::fixture_dir("unet2d/sdxl") / "config.json");
  auto with = [&](const std::string& k, nlohmann::json v) {
    auto c = base;
    c[k] = std::move(v);
    return unsupported_message(c);
  };
  EXPECT_NE(with("class_embed_type", "timestep").find("class_embed_type=\"timestep\""), std::string::npos);
  EXPECT_NE(with("addition_embed_type", "text").find("addition_embed_type=\"text\""), std::string::npos);
  EXPECT_NE(with("down_block_types", {"SimpleCrossAttnDownBlock2D", "CrossAttnDownBlock2D"})
                .find("down_block_types[]=\"SimpleCrossAttnDownBlock2D\""),
            std::string::npos);
  EXPECT_NE(with("mid_block_type", "UNetMidBlock2DSimpleCrossAttn").find("mid_block_type"), std::string::npos);
  EXPECT_NE(with("time_cond_proj_dim", 256).find("time_cond_proj_dim=256"), std::string::npos);
  EXPECT_NE(with("resnet_time_scale_shift", "scale_shift").find("resnet_time_scale_shift"), std::string::npos);
  EXPECT_NE(with("some_future_option", true).find("some_future_option"), std::string::npos);
  EXPECT_NE(with("transformer_layers_per_block", {1, 2, 3}).find("transformer_layers_per_block"), std::string::npos);
  EXPECT_EQ(unsupported_message(base), "");
}

TEST(UNet2DCondition, SDXLNeedsAddedConditions) {
  torch::NoGradGuard ng;
  UNet2DConditionModel unet(UNet2DConditionConfig::from_json(io::read_json(test::fixture_dir("unet2d/sdxl") / "config.json")));
  EXPECT_THROW(unet(torch::zeros({1, 4, 8, 8}), torch::tensor(1), torch::zeros({1, 77, 64})), Error);
}

TEST(UNet2DCondition, OddLatentSizesKeepTheirShape) {
  // 2^(levels−1) does not divide 9×7: the up path interpolates to the skip sizes (forward_upsample_size).
  torch::NoGradGuard ng;
  auto dir = test::fixture_dir("unet2d/sd15");
  UNet2DConditionModel unet(UNet2DConditionConfig::from_json(io::read_json(dir / "config.json")));
  auto out = unet(torch::randn({1, 4, 9, 7}), torch::tensor(10), torch::randn({1, 77, 32}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 4, 9, 7}));
}
