// CLIPVisionModelWithProjection and SVD's CLIP preprocessing against the reference (fixtures/clip_vision).
#include <iostream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/clip_image_preprocess.h"
#include "models/clip_vision_model.h"
#include "models/io/safetensors.h"
#include "models/io/state_dict.h"
#include "tests/test_util.h"

using namespace clipgen;

namespace {
::testing::AssertionResult close(const at::Tensor& got, const at::Tensor& ref, double atol = 1e-4, double rtol = 1e-4) {
  if (got.sizes() != ref.sizes()) return ::testing::AssertionFailure() << "shape " << got.sizes() << " vs " << ref.sizes();
  double err = (got.to(torch::kDouble) - ref.to(torch::kDouble)).abs().max().item<double>();
  double allowed = atol + rtol * ref.to(torch::kDouble).abs().max().item<double>();
  if (err <= allowed) return ::testing::AssertionSuccess() << "max abs err " << err;
  return ::testing::AssertionFailure() << "max abs err " << err << " > allowed " << allowed;
}
}  // namespace

TEST(CLIPVisionModelWithProjection, MatchesReferenceOutputs) {
  auto dir = test::fixture_dir("clip_vision");
  auto in = io::load_safetensors(dir / "inputs.safetensors");
  auto out = io::load_safetensors(dir / "outputs.safetensors");
  auto m = load_clip_vision_model_with_projection(dir);
  EXPECT_EQ(m->config().num_patches(), 49);
  torch::InferenceMode guard;
  auto o = m(in.at("pixel_values"), true);
  EXPECT_TRUE(close(o.image_embeds, out.at("image_embeds")));
  EXPECT_TRUE(close(o.last_hidden_state, out.at("last_hidden_state")));
  ASSERT_EQ(o.hidden_states.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(close(o.hidden_states[i], out.at("hidden_states_" + std::to_string(i)))) << i;
}

TEST(CLIPVisionModelWithProjection, PerturbedClassEmbeddingFails) {
  auto dir = test::fixture_dir("clip_vision");
  auto in = io::load_safetensors(dir / "inputs.safetensors");
  auto out = io::load_safetensors(dir / "outputs.safetensors");
  auto weights = io::load_safetensors(dir / "model.safetensors");
  // (A constant offset would be removed by pre_layrnorm; change a single component.)
  auto ce = weights.at("vision_model.embeddings.class_embedding").clone();
  ce[0] += 0.5;
  weights["vision_model.embeddings.class_embedding"] = ce;
  CLIPVisionModelWithProjection m(CLIPVisionConfig::from_file(dir / "config.json"));
  io::load_state_dict(*m, weights, "model.safetensors");
  torch::InferenceMode guard;
  EXPECT_FALSE(close(m(in.at("pixel_values")).image_embeds, out.at("image_embeds")));
}

// pixel_values[0] is the SVD pipeline's preprocessing of preprocess_image_uint8_hwc (README h).
TEST(SVDClipPreprocess, MatchesPipelinePixelValues) {
  auto dir = test::fixture_dir("clip_vision");
  auto in = io::load_safetensors(dir / "inputs.safetensors");
  auto norm = CLIPImageNormalization::from_file(dir / "feature_extractor/preprocessor_config.json");
  EXPECT_EQ(norm.size, 224);
  auto px = svd_clip_preprocess_uint8_hwc(in.at("preprocess_image_uint8_hwc"), norm);
  auto ref = in.at("pixel_values").slice(0, 0, 1);
  auto c = close(px, ref, 1e-4, 0);
  EXPECT_TRUE(c);
  std::cout << "preprocessing residual: " << c.message() << "\n";
  // Not an accident of tolerance: plain bicubic without the anti-aliasing blur differs visibly.
  auto x = in.at("preprocess_image_uint8_hwc").to(torch::kFloat).div(255.0f).permute({2, 0, 1}).unsqueeze(0) * 2.0 - 1.0;
  namespace F = torch::nn::functional;
  auto plain = F::interpolate(x, F::InterpolateFuncOptions().size(std::vector<int64_t>{224, 224}).mode(torch::kBicubic).align_corners(true));
  auto mean = torch::tensor({0.48145466f, 0.4578275f, 0.40821073f}).view({1, 3, 1, 1});
  auto stdv = torch::tensor({0.26862954f, 0.26130258f, 0.27577711f}).view({1, 3, 1, 1});
  EXPECT_FALSE(close(((plain + 1) / 2 - mean) / stdv, ref, 1e-4, 0));
}

TEST(SVDClipPreprocess, KernelRules) {
  // Downscale by 4 on W only: the blur must keep a constant image constant and keep the output size.
  auto x = torch::full({1, 3, 224, 896}, 0.25f);
  auto y = resize_with_antialiasing(x, 224, 224);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{1, 3, 224, 224}));
  EXPECT_TRUE(close(y, torch::full({1, 3, 224, 224}, 0.25f), 1e-6, 0));
}
