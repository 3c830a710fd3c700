// `clipgen fixture check` on the end-to-end tiny Stable Video Diffusion pipeline fixture
// (pipelines/stable_video_diffusion): every recorded tensor of the temporal stage within the pipeline
// tolerance (schedule at rtol 1e-6). Negative checks (wrong conditioning caught) are in
// tests/stages/test_temporal.cpp.
#include <gtest/gtest.h>

#include <cstdio>

#include "parity/fixture.h"
#include "tests/test_util.h"

using namespace clipgen;

TEST(SvdPipelineFixture, AllOutputsMatchDiffusers) {
  auto res = parity::check_fixture(test::fixture_dir("pipelines/stable_video_diffusion"));
  // 9 conditioning/schedule tensors + 4 per step × 3 + final_latents + 2 decode tensors + frames.
  EXPECT_EQ(res.size(), 25u);
  for (const auto& c : res) {
    if (c.name == "frames" || c.name == "final_latents" || c.name == "image_embeds")
      std::printf("%s max_abs_err %.3g allowed %.3g\n", c.name.c_str(), c.max_abs_error, c.allowed);
    EXPECT_TRUE(c.pass) << c.name << " " << c.note << " max_abs_err " << c.max_abs_error << " allowed " << c.allowed;
  }
}
