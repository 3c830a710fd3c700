// AutoencoderKL::decode_tiled_exact against the untiled decode(), on the fixture VAE (fixtures/vae/
// autoencoder_kl: 4 levels of 32 channels, 2 resnets per decoder block, random weights) at a raster that
// needs 3×3 tiles, for stationary random latents (standard normal; the second batch row scaled and
// shifted so that the rows' GroupNorm statistics differ).
//
// Stated tolerance: the whole tiled raster — tile interiors, seams and borders alike — matches decode()
// within max abs error 2e-4 in float32 (decoded values here reach |x| ≈ 5), for both the lock-step and
// the recompute strategy. Measured: 8.0e-5, and it is decode()'s own float32 rounding: against a float64
// decode, float32 decode() is 7.9e-5 off and float32 decode_tiled_exact 5.5e-6 (its GroupNorm statistics
// are summed in double); in float64 decode_tiled_exact equals decode() within 1e-9 (measured 8e-14).
//
// The test can fail: with each tile's own GroupNorm statistics (what independent tile decodes, e.g.
// diffusers' tiled_decode, do) or without the halo the same comparison is orders of magnitude off, and
// both ablations are asserted to exceed the tolerance.
#include <gtest/gtest.h>

#include <iostream>
#include <torch/torch.h>

#include "models/autoencoder_kl.h"
#include "models/rng.h"
#include "tests/test_util.h"

using namespace clipgen;

namespace {
constexpr double kTolerance = 2e-4;        // float32, stated in docs/vae-decode.md
constexpr double kDoubleTolerance = 1e-9;  // float64: the method itself is exact

AutoencoderKL fixture_vae() { return load_autoencoder_kl(test::fixture_dir("vae/autoencoder_kl")); }

at::Tensor stationary_latents() {
  auto g = make_generator(1234);
  auto lat = randn({2, 4, 40, 36}, g);  // 320 × 288 px; 16-latent tiles → 3 × 3 tiles (last ones 8 and 4)
  lat[1].mul_(1.5).add_(0.3);
  return lat;
}

double max_abs(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

// Max |a − b| over pixels at least `d` pixels from every internal tile seam (seams every `stride` px).
double max_abs_away_from_seams(const at::Tensor& a, const at::Tensor& b, int64_t stride, int64_t d) {
  auto keep = [&](int64_t n) {
    auto m = torch::ones({n}, torch::kBool);
    for (int64_t s = stride; s < n; s += stride) m.slice(0, std::max<int64_t>(0, s - d), std::min(n, s + d)).fill_(false);
    return m;
  };
  auto mask = keep(a.size(2)).view({1, 1, -1, 1}) & keep(a.size(3)).view({1, 1, 1, -1});
  return (a - b).abs().masked_select(mask.expand_as(a)).max().item<double>();
}
}  // namespace

TEST(AutoencoderKLTiled, HaloIsTheDecoderReceptiveField) {
  auto vae = fixture_vae();
  // After the mid-block, per upsampling level: 2 resnets (4 3×3 convs), then nearest ×2 + 3×3 conv; then
  // conv_out. Backwards from the output in pixels of each level: 1 + 4 = 5 → ⌈(5+1)/2⌉ = 3, + 4 = 7 →
  // ⌈(7+1)/2⌉ = 4, + 4 = 8 → ⌈(8+1)/2⌉ = 5, + 4 = 9 latents.
  EXPECT_EQ(vae->decoder_halo_latents(), 9);
  // SD/SDXL structure (3 resnets per decoder block): 7 → 4 + 6 = 10 → 6 + 6 = 12 → 7 + 6 = 13.
  AutoencoderKLConfig sd;
  sd.block_out_channels = {32, 32, 32, 32};
  sd.layers_per_block = 2;
  blocks::EmptyInitGuard g;
  EXPECT_EQ(AutoencoderKL(sd)->decoder_halo_latents(), 13);
}

TEST(AutoencoderKLTiled, ExactTiledDecodeMatchesDecode) {
  torch::NoGradGuard ng;
  auto vae = fixture_vae();
  auto lat = stationary_latents();
  auto full = vae->decode(lat);
  ASSERT_EQ(full.sizes(), (std::vector<int64_t>{2, 3, 320, 288}));
  const double scale = full.abs().max().item<double>();
  std::vector<at::Tensor> results;
  for (bool recompute : {false, true}) {
    ExactTiledDecodeOptions o;
    o.tile_latent_size = 16;
    o.recompute = recompute;
    auto tiled = vae->decode_tiled_exact(lat, o);
    ASSERT_EQ(tiled.sizes(), full.sizes());
    const double err = max_abs(tiled, full);
    std::cout << "decode_tiled_exact (recompute=" << recompute << ") vs decode: max abs err " << err
              << " (max |decode| " << scale << ")\n";
    EXPECT_LE(err, kTolerance) << "recompute=" << recompute;
    results.push_back(tiled);
  }
  // Both strategies make the same calls on the same tiles.
  EXPECT_LE(max_abs(results[0], results[1]), 1e-6);
  // One tile covering the latent is decode() as well.
  ExactTiledDecodeOptions one;
  one.tile_latent_size = 64;
  EXPECT_LE(max_abs(vae->decode_tiled_exact(lat, one), full), kTolerance);
}

TEST(AutoencoderKLTiled, ExactInDoublePrecision) {
  // In float64 the rounding noise drops by ~9 orders of magnitude, so what is left is the method's own
  // error: none. decode_tiled_exact equals decode() to 1e-9, and a halo one latent short of
  // decoder_halo_latents() is visibly worse.
  torch::NoGradGuard ng;
  auto vae = fixture_vae();
  vae->to(torch::kDouble);
  auto lat = stationary_latents().to(torch::kDouble);
  auto full = vae->decode(lat);
  ExactTiledDecodeOptions o;
  o.tile_latent_size = 16;
  const double err = max_abs(vae->decode_tiled_exact(lat, o), full);
  std::cout << "float64 decode_tiled_exact vs decode: max abs err " << err << "\n";
  EXPECT_LE(err, kDoubleTolerance);
  // float32: the tiled result is as close to the float64 decode as the untiled float32 decode is.
  auto vae32 = fixture_vae();
  const double untiled32 = max_abs(vae32->decode(lat.to(torch::kFloat)).to(torch::kDouble), full);
  const double tiled32 = max_abs(vae32->decode_tiled_exact(lat.to(torch::kFloat), o).to(torch::kDouble), full);
  std::cout << "vs float64 decode: float32 decode " << untiled32 << ", float32 decode_tiled_exact " << tiled32 << "\n";
  EXPECT_LE(tiled32, 2 * untiled32);
  ExactTiledDecodeOptions short_halo;
  short_halo.tile_latent_size = 16;
  short_halo.halo_latents = vae->decoder_halo_latents() - 1;
  const double short_err = max_abs(vae->decode_tiled_exact(lat.slice(0, 0, 1), short_halo), full.slice(0, 0, 1));
  std::cout << "float64, halo " << short_halo.halo_latents << ": max abs err " << short_err << "\n";
  EXPECT_GT(short_err, 1000 * kDoubleTolerance);
}

TEST(AutoencoderKLTiled, PerTileStatisticsOrNoHaloFailTheTolerance) {
  torch::NoGradGuard ng;
  auto vae = fixture_vae();
  auto lat = stationary_latents().slice(0, 0, 1);
  auto full = vae->decode(lat);
  ExactTiledDecodeOptions per_tile;
  per_tile.tile_latent_size = 16;
  per_tile.global_group_norm = false;
  auto a = vae->decode_tiled_exact(lat, per_tile);
  // Per-tile statistics are wrong everywhere, not only near seams (printed by distance from the seams).
  for (int64_t d : {0, 8, 32, 64})
    std::cout << "per-tile GroupNorm statistics: max abs err at ≥ " << d << " px from seams "
              << max_abs_away_from_seams(a, full, 128, d) << "\n";
  EXPECT_GT(max_abs_away_from_seams(a, full, 128, 32), 100 * kTolerance);
  ExactTiledDecodeOptions no_halo;
  no_halo.tile_latent_size = 16;
  no_halo.halo_latents = 0;
  auto b = vae->decode_tiled_exact(lat, no_halo);
  const double seam_err = max_abs(b, full);
  std::cout << "no halo: max abs err " << seam_err << "\n";
  EXPECT_GT(seam_err, 100 * kTolerance);
}

TEST(AutoencoderKLTiled, SlicedDecodeIsExact) {
  // decode_sliced decodes one batch row (frame) at a time: identical to decode() up to rounding.
  torch::NoGradGuard ng;
  auto vae = fixture_vae();
  auto lat = stationary_latents().slice(2, 0, 16).slice(3, 0, 12);
  EXPECT_LE(max_abs(vae->decode_sliced(lat), vae->decode(lat)), kTolerance);
  vae->to(torch::kDouble);
  lat = lat.to(torch::kDouble);
  EXPECT_LE(max_abs(vae->decode_sliced(lat), vae->decode(lat)), kDoubleTolerance);
}

TEST(AutoencoderKLTiled, RejectsBadArguments) {
  auto vae = fixture_vae();
  ExactTiledDecodeOptions o;
  o.tile_latent_size = 0;
  EXPECT_THROW(vae->decode_tiled_exact(torch::zeros({1, 4, 8, 8}), o), c10::Error);
  EXPECT_THROW(vae->decode_tiled_exact(torch::zeros({4, 8, 8})), c10::Error);
}
