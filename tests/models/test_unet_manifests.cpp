// Full-size SD1.5, SD2.1 and SDXL UNets and the SD/SDXL VAEs, built from the real config.json files in
// tests/data/manifests, have exactly the manifests' parameter names and shapes.
// The models are built under blocks::EmptyInitGuard: Conv2d/Linear parameters are allocated with
// torch::empty and never written, so the 2.6 B-parameter SDXL UNet costs address space, not RSS or
// initialisation time. One model at a time.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "models/autoencoder_kl.h"
#include "models/io/diffusers_folder.h"
#include "models/io/state_dict.h"
#include "models/unet_2d_condition.h"
#include "tests/models/manifest_test_util.h"
#include "tests/test_util.h"

using namespace clipgen;

namespace {

void check_unet(const std::string& model) {
  auto cfg = UNet2DConditionConfig::from_json(io::read_json(test::manifest_dir(model + "/unet/config.json")));
  blocks::EmptyInitGuard g;
  UNet2DConditionModel unet(cfg);
  test::expect_matches_manifest(*unet, model + "/unet.json");
}

void check_vae(const std::string& model) {
  auto cfg = AutoencoderKLConfig::from_json(io::read_json(test::manifest_dir(model + "/vae/config.json")));
  blocks::EmptyInitGuard g;
  AutoencoderKL vae(cfg);
  test::expect_matches_manifest(*vae, model + "/vae.json");
}

}  // namespace

TEST(UNetManifests, SD15UNet) { check_unet("sd15"); }
TEST(UNetManifests, SD21UNet) { check_unet("sd21"); }
TEST(UNetManifests, SDXLUNet) { check_unet("sdxl_base"); }
TEST(UNetManifests, SD15VAE) { check_vae("sd15"); }
TEST(UNetManifests, SD21VAE) { check_vae("sd21"); }
TEST(UNetManifests, SDXLVAE) { check_vae("sdxl_base"); }
