// End-to-end parity of the keyframe stage with diffusers' StableDiffusionPipeline
// (fixtures/pipelines/stable_diffusion: explicit latents in; embeddings, every UNet call, every
// scheduler step, the VAE decode and the image out), at the fixture README's pipeline tolerance.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "parity/fixture.h"
#include "tests/test_util.h"

using namespace clipgen;

TEST(SDPipeline, MatchesDiffusersEndToEnd) {
  auto res = parity::check_fixture(test::fixture_dir("pipelines/stable_diffusion"));
  // 2 token-id checks + 25 recorded outputs.
  ASSERT_EQ(res.size(), 27u);
  for (const auto& c : res) EXPECT_TRUE(c.pass) << c.name << ": " << c.max_abs_error << " > " << c.allowed << " " << c.note;
}

TEST(SDPipeline, TheImageComparisonCanFail) {
  auto res = parity::check_fixture(test::fixture_dir("pipelines/stable_diffusion"));
  auto ref = io::load_safetensors(test::fixture_dir("pipelines/stable_diffusion") / "outputs.safetensors").at("image");
  // An image off by 2e-3 (a tenth of a grey level) fails the 1e-3 pipeline bound.
  auto c = parity::compare_tensors("image", ref + 2e-3, ref, parity::Tolerance::pipeline());
  EXPECT_FALSE(c.pass);
  (void)res;
}
