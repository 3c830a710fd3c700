// AutoencoderTiny (TAESD) parity with diffusers 0.27.2 (fixtures/vae/autoencoder_tiny): encode, decode and
// forward with uint8 latent quantisation at Tolerance::model().
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "models/autoencoder_tiny.h"
#include "models/io/diffusers_folder.h"
#include "models/io/state_dict.h"
#include "parity/fixture.h"
#include "tests/test_util.h"

using namespace clipgen;

TEST(AutoencoderTiny, FixturePasses) {
  auto res = parity::check_fixture(test::fixture_dir("vae/autoencoder_tiny"));
  EXPECT_EQ(res.size(), 4u);  // latents_out, decoded, forward_sample, intermediate:encoder
  for (const auto& c : res) EXPECT_TRUE(c.pass) << c.name << " err " << c.max_abs_error << " " << c.note;
}

TEST(AutoencoderTiny, LoadsFromFolderAndPerturbedWeightFails) {
  torch::NoGradGuard ng;
  auto dir = test::fixture_dir("vae/autoencoder_tiny");
  auto taesd = load_autoencoder_tiny(dir);
  auto in = io::load_safetensors(dir / "inputs.safetensors");
  auto ref = io::load_safetensors(dir / "outputs.safetensors").at("decoded");
  EXPECT_TRUE(parity::compare_tensors("decoded", taesd->decode(in.at("latents")), ref, parity::Tolerance::model()).pass);
  taesd->named_parameters()["decoder.layers.18.weight"].mul_(1.01);
  EXPECT_FALSE(parity::compare_tensors("decoded", taesd->decode(in.at("latents")), ref, parity::Tolerance::model()).pass);
}

TEST(AutoencoderTiny, ParameterNamesMatchTheTAESDManifest) {
  auto m = io::read_json(test::manifest_dir("taesd/model.json"));
  blocks::EmptyInitGuard g;
  AutoencoderTiny taesd(AutoencoderTinyConfig::from_json(io::read_json(test::manifest_dir("taesd/config.json"))));
  auto state = io::module_state(*taesd);
  EXPECT_EQ(state.size(), m["tensors"].size());
  for (auto it = m["tensors"].begin(); it != m["tensors"].end(); ++it) {
    ASSERT_TRUE(state.count(it.key())) << it.key();
    EXPECT_EQ(state.at(it.key()).sizes().vec(), it.value().get<std::vector<int64_t>>()) << it.key();
  }
}
