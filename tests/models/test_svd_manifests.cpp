// The full-size SVD-XT UNet (UNetSpatioTemporalConditionModel, 1.52 B parameters) and temporal VAE
// (AutoencoderKLTemporalDecoder), built from the real config.json files in tests/data/manifests/svd_xt,
// have exactly the manifests' parameter names and shapes. Built under blocks::EmptyInitGuard (parameters
// allocated, never written: address space, not RSS), one model at a time, each built once.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "models/autoencoder_kl_temporal_decoder.h"
#include "models/io/diffusers_folder.h"
#include "models/io/state_dict.h"
#include "models/unet_spatio_temporal_condition.h"
#include "tests/models/manifest_test_util.h"
#include "tests/test_util.h"

using namespace clipgen;

TEST(SVDManifests, SVDXTUNet) {
  const auto path = test::manifest_dir("svd_xt/unet/config.json");
  auto cfg = UNetSpatioTemporalConditionConfig::from_json(io::read_json(path), path.string());
  EXPECT_EQ(cfg.num_frames, 25);
  blocks::EmptyInitGuard g;
  UNetSpatioTemporalConditionModel unet(cfg);
  test::expect_matches_manifest(*unet, "svd_xt/unet.json");
}

TEST(SVDManifests, SVDXTTemporalVAE) {
  const auto path = test::manifest_dir("svd_xt/vae/config.json");
  auto cfg = AutoencoderKLTemporalDecoderConfig::from_json(io::read_json(path), path.string());
  blocks::EmptyInitGuard g;
  AutoencoderKLTemporalDecoder vae(cfg);
  test::expect_matches_manifest(*vae, "svd_xt/vae.json");
}
