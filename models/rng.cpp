#include "models/rng.h"

#include <torch/torch.h>
#include <ATen/CPUGeneratorImpl.h>

namespace clipgen {

static uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t derive_seed(uint64_t shot_seed, SeedStream stream, uint64_t index) {
  if (stream == SeedStream::KeyframeLatents && index == 0) return shot_seed;
  uint64_t tag = (static_cast<uint64_t>(stream) << 32) | (index & 0xffffffffull);
  return splitmix64(shot_seed ^ splitmix64(tag)) & 0x7fffffffffffffffull;
}

at::Generator make_generator(uint64_t seed) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  return g;
}

at::Tensor randn(at::IntArrayRef shape, at::Generator& gen, c10::Device device, c10::ScalarType dtype) {
  auto t = torch::randn(shape, gen, torch::TensorOptions().dtype(torch::kFloat).device(torch::kCPU));
  if (dtype != torch::kFloat || !device.is_cpu()) t = t.to(device, dtype);
  return t;
}

}  // namespace clipgen
