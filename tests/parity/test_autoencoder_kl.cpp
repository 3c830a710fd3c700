// AutoencoderKL parity with diffusers 0.27.2 (fixtures/vae/autoencoder_kl): posterior, sample with the
// recorded noise, decode, reconstruction and encoder intermediates at Tolerance::model(); legacy
// attention names; tiled decode against the untiled decode.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/autoencoder_kl.h"
#include "models/io/diffusers_folder.h"
#include "models/io/safetensors.h"
#include "models/io/state_dict.h"
#include "models/rng.h"
#include "parity/fixture.h"
#include "tests/test_util.h"

using namespace clipgen;
namespace fs = std::filesystem;

namespace {
fs::path fixture() { return test::fixture_dir("vae/autoencoder_kl"); }
io::TensorMap inputs() { return io::load_safetensors(fixture() / "inputs.safetensors"); }
io::TensorMap outputs() { return io::load_safetensors(fixture() / "outputs.safetensors"); }
}  // namespace

TEST(AutoencoderKL, FixturePasses) {
  auto res = parity::check_fixture(fixture());
  // 7 outputs + 6 stored intermediates (encoder.down_blocks.0-3, encoder.mid_block, encoder.conv_out) + quant_conv
  EXPECT_EQ(res.size(), 14u);
  for (const auto& c : res) EXPECT_TRUE(c.pass) << c.name << " err " << c.max_abs_error << " " << c.note;
}

TEST(AutoencoderKL, PerturbedMidAttentionFails) {
  torch::NoGradGuard ng;
  auto vae = load_autoencoder_kl(fixture());
  auto ref = outputs().at("decoded");
  auto lat = inputs().at("latents");
  EXPECT_TRUE(parity::compare_tensors("decoded", vae->decode(lat), ref, parity::Tolerance::model()).pass);
  vae->named_parameters()["decoder.mid_block.attentions.0.group_norm.weight"].add_(0.05);
  EXPECT_FALSE(parity::compare_tensors("decoded", vae->decode(lat), ref, parity::Tolerance::model()).pass);
}

TEST(AutoencoderKL, LegacyAttentionNamesLoad) {
  // Early diffusers wrote the VAE attention as query/key/value/proj_attn; they must load as to_q/… .
  auto w = io::load_safetensors(fixture() / "diffusion_pytorch_model.safetensors");
  io::TensorMap legacy;
  size_t renamed = 0;
  for (auto& [k, v] : w) {
    std::string n = k;
    static const std::vector<std::pair<std::string, std::string>> renames = {
        {".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}};
    for (const auto& [from, to] : renames) {
      auto p = n.find(from);
      if (p != std::string::npos) {
        n.replace(p, from.size(), to);
        ++renamed;
      }
    }
    legacy.emplace(n, v);
  }
  ASSERT_EQ(renamed, 16u);  // encoder + decoder mid attention: 4 projections × (weight, bias) × 2
  auto dir = test::scratch_dir("vae_legacy_names");
  fs::copy_file(fixture() / "config.json", dir / "config.json");
  io::save_safetensors(dir / "diffusion_pytorch_model.safetensors", legacy);
  torch::NoGradGuard ng;
  auto vae = load_autoencoder_kl(dir);
  EXPECT_TRUE(parity::compare_tensors("decoded", vae->decode(inputs().at("latents")), outputs().at("decoded"),
                                      parity::Tolerance::model())
                  .pass);
}

TEST(AutoencoderKL, SampleWithGeneratorDrawsLikeDiffusers) {
  torch::NoGradGuard ng;
  auto vae = load_autoencoder_kl(fixture());
  auto post = vae->encode(inputs().at("image"));
  auto g1 = make_generator(7), g2 = make_generator(7);
  auto s = post.sample(g1);
  auto noise = randn(post.mean.sizes(), g2);
  EXPECT_TRUE(torch::equal(s, post.mean + post.std * noise));
  EXPECT_DOUBLE_EQ(vae->scaling_factor(), 0.18215);
  EXPECT_TRUE(torch::allclose(vae->unscale_latents(vae->scale_latents(post.mean)), post.mean, 1e-6, 1e-6));
}

TEST(AutoencoderKL, SlicedDecodeEqualsDecode) {
  torch::NoGradGuard ng;
  auto vae = load_autoencoder_kl(fixture());
  auto lat = inputs().at("latents");
  EXPECT_TRUE(torch::allclose(vae->decode_sliced(lat), vae->decode(lat), 1e-5, 1e-5));
}

// Tiled decode is an approximation (GroupNorm statistics and the mid-block attention see one tile):
// with 8×8-latent tiles (64 px, 16 px blend) on a smooth 24×24 latent, away from the blended seams the
// result stays within the stated tolerance of the untiled decode; see kTiledTolerance.
TEST(AutoencoderKL, TiledDecodeMatchesUntiledAwayFromSeams) {
  torch::NoGradGuard ng;
  auto vae = load_autoencoder_kl(fixture());
  // A smooth latent field (bilinear upsampling of the fixture latents) like real image latents.
  auto lat = at::upsample_bilinear2d(inputs().at("latents").slice(0, 0, 1), {24, 24}, false);
  auto full = vae->decode(lat);
  auto tiled = vae->tiled_decode(lat);
  ASSERT_EQ(tiled.sizes(), full.sizes());
  // Tile k lands at 48k px; its first 16 px are blended with the previous tile. Mask those bands out.
  auto mask = torch::ones({192}, torch::kBool);
  for (int64_t o = 48; o < 192; o += 48) mask.slice(0, o - 2, o + 18).fill_(false);
  auto m2 = mask.view({1, 1, 192, 1}) & mask.view({1, 1, 1, 192});
  auto diff = (tiled - full).abs().masked_select(m2.expand_as(full));
  const double err = diff.max().item<double>(), range = full.abs().max().item<double>();
  RecordProperty("tiled_max_abs_err", std::to_string(err));
  std::cout << "tiled vs untiled away from seams: max abs err " << err << " (output range " << range << ")\n";
  constexpr double kTiledTolerance = 0.1;  // relative to the output's max |value|
  EXPECT_LT(err, kTiledTolerance * range);
  // A single tile covering the whole latent is exact.
  TiledDecodeOptions one{24, 0.25};
  EXPECT_TRUE(torch::allclose(vae->tiled_decode(lat, one), full, 1e-5, 1e-5));
}

TEST(AutoencoderKL, UnsupportedBlockTypeNamesTheKey) {
  auto cfg = io::read_json(fixture() / "config.json");
  cfg["up_block_types"][1] = "AttnUpDecoderBlock2D";
  try {
    AutoencoderKLConfig::from_json(cfg, "cfg.json");
    FAIL() << "no error";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("up_block_types"), std::string::npos) << e.what();
  }
}
