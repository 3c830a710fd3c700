// Seeded random draws that reproduce PyTorch's CPU generator exactly, and the documented derivation of
// per-item seeds from a shot seed (see docs/seeds.md).
//
// torch::randn on CPU with a generator seeded by s gives the same numbers as Python's
// torch.randn(shape, generator=torch.Generator().manual_seed(s)) — and so as diffusers' randn_tensor on
// CPU. Every random draw in clipgen goes through an explicit Generator: never the global one, so
// results do not depend on execution order, threads or device count.
#pragma once
#include <cstdint>
#include <string_view>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

namespace clipgen {

// What a derived seed is for. The numeric values are part of the reproducibility contract: never renumber.
enum class SeedStream : uint64_t {
  KeyframeLatents = 1,   // initial latents of keyframe k (k = 0 uses the shot seed itself)
  SegmentLatents = 2,    // initial latents of temporal segment s
  NoiseAugment = 3,      // SVD conditioning-image noise augmentation of segment s
  SchedulerNoise = 4,    // ancestral / stochastic sampler draws of item i
  Img2ImgNoise = 5,      // img2img noising of keyframe k
};

// seed(shot, stream, index): index 0 of KeyframeLatents is the shot seed unchanged (diffusers parity);
// everything else is splitmix64(shot_seed ^ splitmix64(stream << 32 | index)), masked to 63 bits.
uint64_t derive_seed(uint64_t shot_seed, SeedStream stream, uint64_t index);

// A fresh CPU generator seeded with `seed` (torch.Generator().manual_seed(seed)).
at::Generator make_generator(uint64_t seed);

// Standard normal draw on CPU from `gen`, then moved to `device` — so the numbers never depend on the device.
at::Tensor randn(at::IntArrayRef shape, at::Generator& gen, c10::Device device = c10::kCPU,
                 c10::ScalarType dtype = c10::kFloat);

}  // namespace clipgen
