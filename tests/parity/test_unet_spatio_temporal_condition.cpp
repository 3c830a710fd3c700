// UNetSpatioTemporalConditionModel parity with diffusers 0.27.2 (fixtures/unet_spatiotemporal): three
// timestep calls (0-d and [B] timesteps) and every stored intermediate at Tolerance::model(); perturbed
// AlphaBlender mix factors and a wrong temporal-context layout must break the comparison; config errors name
// the key.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/io/diffusers_folder.h"
#include "models/io/safetensors.h"
#include "models/unet_spatio_temporal_condition.h"
#include "parity/fixture.h"
#include "tests/test_util.h"

using namespace clipgen;
namespace fs = std::filesystem;

namespace {
fs::path fixture() { return test::fixture_dir("unet_spatiotemporal"); }
io::TensorMap inputs() { return io::load_safetensors(fixture() / "inputs.safetensors"); }
io::TensorMap outputs() { return io::load_safetensors(fixture() / "outputs.safetensors"); }

at::Tensor run0(UNetSpatioTemporalConditionModel& unet) {
  auto in = inputs();
  return unet->forward(in.at("sample"), in.at("timestep_0"), in.at("encoder_hidden_states"), in.at("added_time_ids"));
}

bool matches0(UNetSpatioTemporalConditionModel& unet) {
  return parity::compare_tensors("sample_0", run0(unet), outputs().at("sample_0"), parity::Tolerance::model()).pass;
}

void expect_unsupported(nlohmann::json cfg, const std::string& key) {
  try {
    UNetSpatioTemporalConditionConfig::from_json(cfg, "test-config.json");
    ADD_FAILURE() << "no error for " << key;
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("test-config.json"), std::string::npos) << e.what();
  }
}
}  // namespace

TEST(UNetSpatioTemporalCondition, FixturePasses) {
  auto res = parity::check_fixture(fixture());
  // 3 calls + 12 intermediates (time_proj, time_embedding, add_time_proj, add_embedding, conv_in,
  // down_blocks.0-1, mid_block, up_blocks.0-1, conv_norm_out, conv_out).
  EXPECT_EQ(res.size(), 15u);
  for (const auto& c : res) {
    EXPECT_TRUE(c.pass) << c.name << " err " << c.max_abs_error << " " << c.note;
    std::printf("  %-28s max_abs_err %.3g (allowed %.3g)\n", c.name.c_str(), c.max_abs_error, c.allowed);
  }
  auto fx = io::read_json(fixture() / "fixture.json");
  for (auto it = fx["intermediates"].begin(); it != fx["intermediates"].end(); ++it) {
    bool found = false;
    for (const auto& c : res) found |= c.name == "intermediate:" + it.key();
    EXPECT_TRUE(found) << "intermediate not compared: " << it.key();
  }
}

TEST(UNetSpatioTemporalCondition, PerturbedMixFactorsFail) {
  torch::NoGradGuard ng;
  auto unet = load_unet_spatio_temporal_condition(fixture());
  ASSERT_TRUE(matches0(unet));
  auto params = unet->named_parameters();
  // The transformer's learned_with_images blend, then a resnet's.
  for (const char* name : {"down_blocks.0.attentions.0.time_mixer.mix_factor",
                           "up_blocks.0.resnets.1.time_mixer.mix_factor"}) {
    ASSERT_TRUE(params.contains(name)) << name;
    auto& p = params[name];
    const auto saved = p.clone();
    p.add_(0.5);
    EXPECT_FALSE(matches0(unet)) << name;
    p.copy_(saved);
    EXPECT_TRUE(matches0(unet)) << name;
  }
}

TEST(UNetSpatioTemporalCondition, FramePositionEmbeddingMatters) {
  torch::NoGradGuard ng;
  auto unet = load_unet_spatio_temporal_condition(fixture());
  unet->named_parameters()["mid_block.attentions.0.time_pos_embed.linear_2.bias"].add_(0.05);
  EXPECT_FALSE(matches0(unet));
}

TEST(UNetSpatioTemporalCondition, TemporalContextIsFirstFrameOfEachVideo) {
  // Only the first frame's encoder state reaches the temporal cross-attention, and the batch rows keep
  // their own context in the spatial attention: swapping the two batch rows' contexts must change the output.
  torch::NoGradGuard ng;
  auto unet = load_unet_spatio_temporal_condition(fixture());
  auto in = inputs();
  const auto& ehs = in.at("encoder_hidden_states");
  ASSERT_FALSE(torch::equal(ehs[0], ehs[1]));
  auto out = unet->forward(in.at("sample"), in.at("timestep_0"), ehs, in.at("added_time_ids"));
  auto swapped = unet->forward(in.at("sample"), in.at("timestep_0"), ehs.flip(0), in.at("added_time_ids"));
  EXPECT_GT((out - swapped).abs().max().item<double>(), 1e-3);
}

TEST(UNetSpatioTemporalCondition, DoubleTimestepOverloadAgrees) {
  torch::NoGradGuard ng;
  auto unet = load_unet_spatio_temporal_condition(fixture());
  auto in = inputs();
  const double t = in.at("timestep_1").item<double>();
  auto out = unet->forward(in.at("sample"), t, in.at("encoder_hidden_states"), in.at("added_time_ids"));
  EXPECT_TRUE(parity::compare_tensors("sample_1", out, outputs().at("sample_1"), parity::Tolerance::model()).pass);
}

TEST(UNetSpatioTemporalCondition, OddLatentSizeIsRejected) {
  torch::NoGradGuard ng;
  auto unet = load_unet_spatio_temporal_condition(fixture());
  auto in = inputs();
  auto s = in.at("sample").narrow(4, 0, 11);  // w = 11 cannot be halved
  EXPECT_THROW(unet->forward(s, in.at("timestep_0"), in.at("encoder_hidden_states"), in.at("added_time_ids")),
               UnsupportedError);
}

TEST(UNetSpatioTemporalCondition, UnsupportedConfigNamesTheKey) {
  const auto base = io::read_json(fixture() / "config.json");
  auto c = base;
  c["down_block_types"][0] = "CrossAttnDownBlock2D";
  expect_unsupported(c, "down_block_types");
  c = base;
  c["up_block_types"][1] = "CrossAttnUpBlockMotion";
  expect_unsupported(c, "up_block_types");
  c = base;
  c["transformer_layers_per_block"] = nlohmann::json::array({nlohmann::json::array({1, 2}), 1});
  expect_unsupported(c, "transformer_layers_per_block");
  c = base;
  c["num_attention_heads"] = nlohmann::json::array({3, 4});
  expect_unsupported(c, "num_attention_heads");
  c = base;
  c["layers_per_block"] = nlohmann::json::array({1, 1, 1});
  expect_unsupported(c, "layers_per_block");
  c = base;
  c["projection_class_embeddings_input_dim"] = 25;
  expect_unsupported(c, "projection_class_embeddings_input_dim");
  c = base;
  c["time_cond_proj_dim"] = 8;
  expect_unsupported(c, "time_cond_proj_dim");
  // The fixture's own config parses to the values it states.
  auto cfg = UNetSpatioTemporalConditionConfig::from_json(base);
  EXPECT_EQ(cfg.num_attention_heads, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(cfg.layers_per_block, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(cfg.cross_attention_dim, (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(cfg.num_frames, 4);
}
