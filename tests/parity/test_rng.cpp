// Seeded draws reproduce PyTorch's CPU generator bit for bit (fixtures/rng), and seed derivation is stable.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/rng.h"
#include "parity/fixture.h"
#include "tests/test_util.h"

using namespace clipgen;

TEST(Rng, FixtureDrawsAreBitIdentical) {
  auto res = parity::check_fixture(test::fixture_dir("rng"));
  ASSERT_EQ(res.size(), 18u);
  for (const auto& c : res) EXPECT_TRUE(c.pass) << c.name << " err " << c.max_abs_error;
}

TEST(Rng, WrongSeedFailsTheComparison) {
  auto gen = make_generator(43);
  auto ref = io::load_safetensors(test::fixture_dir("rng") / "outputs.safetensors").at("generator_42__randn_2x4x8x8");
  auto c = parity::compare_tensors("x", randn({2, 4, 8, 8}, gen), ref, parity::Tolerance::exact());
  EXPECT_FALSE(c.pass);
}

TEST(Rng, DerivedSeedsAreStableAndDistinct) {
  EXPECT_EQ(derive_seed(42, SeedStream::KeyframeLatents, 0), 42u);
  // Pinned values: changing the derivation breaks every saved shot's reproducibility.
  auto a = derive_seed(42, SeedStream::KeyframeLatents, 1);
  auto b = derive_seed(42, SeedStream::SegmentLatents, 1);
  auto c = derive_seed(43, SeedStream::KeyframeLatents, 1);
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(a, derive_seed(42, SeedStream::KeyframeLatents, 1));
  EXPECT_LT(a, 1ull << 63);
}
