// AutoencoderKLTemporalDecoder parity with diffusers 0.27.2 (fixtures/vae_temporal): posterior
// mean/logvar/std, encoder intermediates and decode(latents, num_frames) at Tolerance::model(); the
// "learned" + switch_spatial_to_temporal_mix blend and time_conv_out must matter; decode_chunked follows
// the SVD pipeline's decode_latents chunking; config errors name the key.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/autoencoder_kl_temporal_decoder.h"
#include "models/io/diffusers_folder.h"
#include "models/io/safetensors.h"
#include "parity/fixture.h"
#include "tests/test_util.h"

using namespace clipgen;
namespace fs = std::filesystem;

namespace {
fs::path fixture() { return test::fixture_dir("vae_temporal"); }
io::TensorMap inputs() { return io::load_safetensors(fixture() / "inputs.safetensors"); }
io::TensorMap outputs() { return io::load_safetensors(fixture() / "outputs.safetensors"); }

bool decode_matches(AutoencoderKLTemporalDecoder& vae) {
  auto in = inputs();
  return parity::compare_tensors("decoded", vae->decode(in.at("latents"), in.at("num_frames").item<int64_t>()),
                                 outputs().at("decoded"), parity::Tolerance::model())
      .pass;
}
}  // namespace

TEST(AutoencoderKLTemporalDecoder, FixturePasses) {
  auto res = parity::check_fixture(fixture());
  // latent_mean, latent_logvar, latent_std, decoded + intermediates encoder.mid_block, encoder.conv_out, quant_conv
  EXPECT_EQ(res.size(), 7u);
  for (const auto& c : res) {
    EXPECT_TRUE(c.pass) << c.name << " err " << c.max_abs_error << " " << c.note;
    std::printf("  %-28s max_abs_err %.3g (allowed %.3g)\n", c.name.c_str(), c.max_abs_error, c.allowed);
  }
}

TEST(AutoencoderKLTemporalDecoder, PerturbedTemporalParametersFail) {
  torch::NoGradGuard ng;
  auto vae = load_autoencoder_kl_temporal_decoder(fixture());
  ASSERT_TRUE(decode_matches(vae));
  auto params = vae->named_parameters();
  for (const char* name : {"decoder.up_blocks.0.resnets.0.time_mixer.mix_factor",
                           "decoder.mid_block.resnets.0.time_mixer.mix_factor",
                           "decoder.up_blocks.3.resnets.1.temporal_res_block.conv2.weight",
                           "decoder.time_conv_out.weight"}) {
    ASSERT_TRUE(params.contains(name)) << name;
    auto& p = params[name];
    const auto saved = p.clone();
    p.add_(0.5);
    EXPECT_FALSE(decode_matches(vae)) << name;
    p.copy_(saved);
  }
  EXPECT_TRUE(decode_matches(vae));
}

TEST(AutoencoderKLTemporalDecoder, SingleLayerMidBlockSkipsItsAttention) {
  // With layers_per_block = 1, diffusers' MidBlockTemporalDecoder holds an attention it never applies.
  torch::NoGradGuard ng;
  auto vae = load_autoencoder_kl_temporal_decoder(fixture());
  vae->named_parameters()["decoder.mid_block.attentions.0.to_out.0.bias"].add_(1.0);
  EXPECT_TRUE(decode_matches(vae));
}

TEST(AutoencoderKLTemporalDecoder, ChunkedDecodeFollowsThePipeline) {
  torch::NoGradGuard ng;
  auto vae = load_autoencoder_kl_temporal_decoder(fixture());
  auto lat = inputs().at("latents");  // [4, 4, 8, 12]
  auto full = vae->decode(lat, 4);
  // One chunk holding every frame is decode() itself.
  EXPECT_TRUE(torch::equal(vae->decode_chunked(lat, 4, 4), full));
  EXPECT_TRUE(torch::equal(vae->decode_chunked(lat, 4, 14), full));
  // Chunks of 3: frames 0-2 as one video, frame 3 alone (as diffusers' decode_latents does).
  auto chunked = vae->decode_chunked(lat, 4, 3);
  auto expect = torch::cat({vae->decode(lat.narrow(0, 0, 3), 3), vae->decode(lat.narrow(0, 3, 1), 1)});
  EXPECT_TRUE(torch::equal(chunked, expect));
  // Frames mix only within a call, so chunking changes the result.
  EXPECT_GT((chunked - full).abs().max().item<double>(), 1e-4);
  // The streaming form hands out the same chunks.
  std::vector<int64_t> firsts;
  vae->decode_chunked(lat, 3, [&](int64_t first, const at::Tensor& frames) {
    firsts.push_back(first);
    EXPECT_TRUE(torch::equal(frames, expect.narrow(0, first, frames.size(0))));
  });
  EXPECT_EQ(firsts, (std::vector<int64_t>{0, 3}));
  EXPECT_THROW(vae->decode_chunked(lat, 3, 2), c10::Error);  // 4 frames are not videos of 3
}

TEST(AutoencoderKLTemporalDecoder, UnsupportedConfigNamesTheKey) {
  const auto base = io::read_json(fixture() / "config.json");
  auto expect_unsupported = [](const nlohmann::json& c, const std::string& key) {
    try {
      AutoencoderKLTemporalDecoderConfig::from_json(c, "vae-config.json");
      ADD_FAILURE() << "no error for " << key;
    } catch (const UnsupportedError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  auto c = base;
  c["down_block_types"][2] = "AttnDownEncoderBlock2D";
  expect_unsupported(c, "down_block_types");
  c = base;
  c["block_out_channels"] = nlohmann::json::array({32, 48, 32, 32});
  expect_unsupported(c, "block_out_channels");
  c = base;
  c["norm_num_groups"] = 16;
  expect_unsupported(c, "norm_num_groups");
  c = base;
  c["_class_name"] = "AutoencoderKL";
  expect_unsupported(c, "_class_name");
  auto cfg = AutoencoderKLTemporalDecoderConfig::from_json(base);
  EXPECT_DOUBLE_EQ(cfg.scaling_factor, 0.18215);
  EXPECT_EQ(cfg.block_out_channels.size(), 4u);
}
