// CLIPTextModel / CLIPTextModelWithProjection against the transformers 4.37.2 reference outputs
// (fixtures/clip_text), at the README's single-forward tolerance (1e-4 abs + 1e-4 × max|ref|).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "models/clip_text_model.h"
#include "models/io/diffusers_folder.h"
#include "models/io/safetensors.h"
#include "models/io/state_dict.h"
#include "tests/test_util.h"

using namespace clipgen;

namespace {

// The fixture README's criterion: max|out − ref| <= atol + rtol · max|ref|.
::testing::AssertionResult close(const at::Tensor& got, const at::Tensor& ref, double atol = 1e-4, double rtol = 1e-4) {
  if (got.sizes() != ref.sizes()) return ::testing::AssertionFailure() << "shape " << got.sizes() << " vs " << ref.sizes();
  double err = (got.to(torch::kDouble) - ref.to(torch::kDouble)).abs().max().item<double>();
  double allowed = atol + rtol * ref.to(torch::kDouble).abs().max().item<double>();
  if (err <= allowed) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max abs err " << err << " > allowed " << allowed;
}

struct Fixture {
  std::filesystem::path dir;
  io::TensorMap in, out;
  explicit Fixture(const std::string& rel) : dir(test::fixture_dir(rel)) {
    in = io::load_safetensors(dir / "inputs.safetensors");
    out = io::load_safetensors(dir / "outputs.safetensors");
  }
};

CLIPTextForwardOptions with_hidden() {
  CLIPTextForwardOptions o;
  o.output_hidden_states = true;
  return o;
}

}  // namespace

TEST(CLIPTextModel, ConfigFromFixture) {
  auto c = CLIPTextConfig::from_file(test::fixture_dir("clip_text/text_model/config.json"));
  EXPECT_EQ(c.encoder.hidden_size, 32);
  EXPECT_EQ(c.encoder.num_hidden_layers, 3);
  EXPECT_EQ(c.encoder.num_attention_heads, 4);
  EXPECT_EQ(c.encoder.hidden_act, CLIPActivation::QuickGELU);
  EXPECT_EQ(c.eos_token_id, 2);
}

TEST(CLIPTextModel, MatchesReferenceOutputs) {
  Fixture f("clip_text/text_model");
  auto m = load_clip_text_model(f.dir);
  torch::InferenceMode guard;
  auto o = m(f.in.at("input_ids"), with_hidden());
  EXPECT_TRUE(close(o.last_hidden_state, f.out.at("last_hidden_state")));
  EXPECT_TRUE(close(o.pooler_output, f.out.at("pooler_output")));
  ASSERT_EQ(o.hidden_states.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(close(o.hidden_states[i], f.out.at("hidden_states_" + std::to_string(i)))) << i;
  EXPECT_TRUE(close(m->text_model->final_layer_norm(o.hidden_state(-2)), f.out.at("penultimate_final_layer_norm")));
  EXPECT_FALSE(o.text_embeds.defined());
}

TEST(CLIPTextModelWithProjection, MatchesReferenceOutputs) {
  Fixture f("clip_text/text_model_proj");
  auto m = load_clip_text_model_with_projection(f.dir);
  EXPECT_EQ(m->config().encoder.hidden_act, CLIPActivation::GELU);
  torch::InferenceMode guard;
  auto o = m(f.in.at("input_ids"), with_hidden());
  EXPECT_TRUE(close(o.last_hidden_state, f.out.at("last_hidden_state")));
  EXPECT_TRUE(close(o.text_embeds, f.out.at("text_embeds")));
  ASSERT_EQ(o.hidden_states.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(close(o.hidden_states[i], f.out.at("hidden_states_" + std::to_string(i)))) << i;
  EXPECT_TRUE(close(m->text_model->final_layer_norm(o.hidden_state(-2)), f.out.at("penultimate_final_layer_norm")));
}

// The comparison can fail: swapping quick_gelu for gelu, or perturbing one weight, breaks parity.
TEST(CLIPTextModel, WrongActivationOrWeightFails) {
  Fixture f("clip_text/text_model");
  auto weights = io::load_safetensors(f.dir / "model.safetensors");
  auto cfg_json = io::read_json(f.dir / "config.json");
  cfg_json["hidden_act"] = "gelu";
  CLIPTextModel wrong_act(CLIPTextConfig::from_json(cfg_json));
  io::load_state_dict(*wrong_act, weights, "model.safetensors");
  torch::InferenceMode guard;
  EXPECT_FALSE(close(wrong_act(f.in.at("input_ids")).last_hidden_state, f.out.at("last_hidden_state")));

  auto cfg = CLIPTextConfig::from_file(f.dir / "config.json");
  CLIPTextModel perturbed(cfg);
  auto w2 = weights;
  w2["text_model.encoder.layers.1.self_attn.v_proj.weight"] = w2.at("text_model.encoder.layers.1.self_attn.v_proj.weight") * 1.01;
  io::load_state_dict(*perturbed, w2, "model.safetensors");
  EXPECT_FALSE(close(perturbed(f.in.at("input_ids")).last_hidden_state, f.out.at("last_hidden_state")));
}

// eos_token_id == 2 pools at argmax(input_ids); any other eos id pools at its first occurrence.
TEST(CLIPTextModel, PoolingRule) {
  auto ids = torch::tensor({49406, 320, 49407, 5, 7, 49407}, torch::kLong).view({1, 6});
  auto cfg = CLIPTextConfig::from_file(test::fixture_dir("clip_text/text_model/config.json"));
  CLIPTextTransformer legacy(cfg);
  EXPECT_EQ(legacy->eos_positions(ids).item<int64_t>(), 2);
  cfg.eos_token_id = 7;
  CLIPTextTransformer modern(cfg);
  EXPECT_EQ(modern->eos_positions(ids).item<int64_t>(), 4);
}

// Older checkpoints carry text_model.embeddings.position_ids: ignored on load.
TEST(CLIPTextModel, PositionIdsInCheckpointAreIgnored) {
  auto dir = test::fixture_dir("clip_text/text_model");
  auto weights = io::load_safetensors(dir / "model.safetensors");
  weights["text_model.embeddings.position_ids"] = torch::arange(77, torch::kLong).view({1, 77});
  CLIPTextModel m(CLIPTextConfig::from_file(dir / "config.json"));
  EXPECT_NO_THROW(io::load_state_dict(*m, weights, "model.safetensors"));
}

TEST(CLIPTextModel, PaddingMaskChangesOnlyMaskedAttention) {
  Fixture f("clip_text/text_model");
  auto m = load_clip_text_model(f.dir);
  torch::InferenceMode guard;
  auto ids = f.in.at("input_ids").slice(0, 0, 1);  // "a photo of a cat" + EOS padding
  auto mask = ids.ne(49407).to(torch::kLong);
  mask.index_put_({0, 6}, 1);  // keep the first EOS (position 6)
  CLIPTextForwardOptions opt;
  opt.attention_mask = mask;
  auto a = m(ids).last_hidden_state, b = m(ids, opt).last_hidden_state;
  // Causal attention: positions 0..6 never see the padding, with or without the mask.
  EXPECT_TRUE(close(b.slice(1, 0, 7), a.slice(1, 0, 7), 1e-6, 0));
}

TEST(CLIPTextModel, BadConfigsAreUnsupportedErrors) {
  nlohmann::json c = {{"hidden_size", 30}, {"num_attention_heads", 4}};
  EXPECT_THROW(CLIPTextConfig::from_json(c), UnsupportedError);
  nlohmann::json d = {{"hidden_act", "swiglu"}};
  try {
    CLIPTextConfig::from_json(d, "te/config.json");
    FAIL() << "expected UnsupportedError";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("hidden_act"), std::string::npos) << e.what();
  }
}
