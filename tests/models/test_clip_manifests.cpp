// Built at full size from the published configs (tests/data/manifests), the CLIP encoders have exactly the
// transformers state_dict: same names, same order, same shapes, same parameter count.
// CLIP-L (SD 1.5), OpenCLIP-H text with 23 layers (SD 2.1), OpenCLIP bigG with projection (SDXL
// text_encoder_2) and the OpenCLIP ViT-H/14 image encoder of SVD-XT. Parameters are allocated without
// initialisation (EmptyInitGuard), so pages are never touched; one model at a time.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/blocks/layers.h"
#include "models/clip_text_model.h"
#include "models/clip_vision_model.h"
#include "models/io/diffusers_folder.h"
#include "tests/test_util.h"

using namespace clipgen;
using json = nlohmann::json;

namespace {

// Parses the manifest in file order (nlohmann::ordered_json keeps state_dict order).
std::vector<std::pair<std::string, std::vector<int64_t>>> manifest_tensors(const std::string& rel, int64_t& num_params) {
  std::ifstream f(test::manifest_dir(rel));
  auto m = nlohmann::ordered_json::parse(f);
  num_params = m["num_parameters"].get<int64_t>();
  EXPECT_TRUE(m["state_dict_buffers"].empty()) << rel;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  for (auto it = m["tensors"].begin(); it != m["tensors"].end(); ++it)
    out.emplace_back(it.key(), it.value().get<std::vector<int64_t>>());
  EXPECT_EQ(static_cast<int64_t>(out.size()), m["num_state_dict_tensors"].get<int64_t>()) << rel;
  return out;
}

void expect_matches_manifest(const torch::nn::Module& module, const std::string& rel) {
  int64_t want_params = 0;
  auto want = manifest_tensors(rel, want_params);
  std::vector<std::pair<std::string, std::vector<int64_t>>> got;
  int64_t got_params = 0;
  for (const auto& p : module.named_parameters(true)) {
    got.emplace_back(p.key(), p.value().sizes().vec());
    got_params += p.value().numel();
  }
  EXPECT_TRUE(module.named_buffers(true).is_empty()) << rel;
  EXPECT_EQ(got_params, want_params) << rel;
  ASSERT_EQ(got.size(), want.size()) << rel;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].first, want[i].first) << rel << " tensor #" << i;
    EXPECT_EQ(got[i].second, want[i].second) << rel << " " << want[i].first;
  }
}

}  // namespace

TEST(CLIPManifests, SD15TextEncoderCLIPL) {
  auto cfg = CLIPTextConfig::from_file(test::manifest_dir("sd15/text_encoder/config.json"));
  blocks::EmptyInitGuard no_init;
  CLIPTextModel m(cfg);
  expect_matches_manifest(*m, "sd15/text_encoder.json");
}

TEST(CLIPManifests, SD21TextEncoderOpenCLIPH23Layers) {
  auto cfg = CLIPTextConfig::from_file(test::manifest_dir("sd21/text_encoder/config.json"));
  EXPECT_EQ(cfg.encoder.num_hidden_layers, 23);
  blocks::EmptyInitGuard no_init;
  CLIPTextModel m(cfg);
  expect_matches_manifest(*m, "sd21/text_encoder.json");
}

TEST(CLIPManifests, SDXLTextEncoders) {
  {
    auto cfg = CLIPTextConfig::from_file(test::manifest_dir("sdxl_base/text_encoder/config.json"));
    blocks::EmptyInitGuard no_init;
    CLIPTextModel m(cfg);
    expect_matches_manifest(*m, "sdxl_base/text_encoder.json");
  }
  auto cfg = CLIPTextConfig::from_file(test::manifest_dir("sdxl_base/text_encoder_2/config.json"));
  blocks::EmptyInitGuard no_init;
  CLIPTextModelWithProjection m(cfg);
  expect_matches_manifest(*m, "sdxl_base/text_encoder_2.json");
}

TEST(CLIPManifests, SVDXTImageEncoder) {
  auto cfg = CLIPVisionConfig::from_file(test::manifest_dir("svd_xt/image_encoder/config.json"));
  EXPECT_EQ(cfg.num_patches(), 256);
  blocks::EmptyInitGuard no_init;
  CLIPVisionModelWithProjection m(cfg);
  expect_matches_manifest(*m, "svd_xt/image_encoder.json");
}
