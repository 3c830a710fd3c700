// One UNet2DConditionModel step at the SD1.5 configuration (tests/data/manifests/sd15/unet/config.json,
// random weights), batch 2 (classifier-free guidance), 256² and 512² images (32² and 64² latents), on the CPU
// or a CUDA device. Prints threads, BLAS backend, oneDNN availability, time per step, GFLOP/s and peak RSS
// (host; on CUDA scripts/device-check.sh samples the GPU's memory with nvidia-smi), in fp32 and bf16 (and
// fp16 on CUDA), with each reduced precision's error against fp32. On CUDA the fp32 figure is strict fp32
// (TF32 off for matmuls and convolutions, as the fixture check runs) and every timed step ends in a
// synchronisation, so the time is the step's, not its launch's.
//
// FLOPs are counted while the step runs by blocks::FlopCounter: 2 × multiply-accumulates of every
// Conv2d, Linear and attention matmul (QKᵀ and PV); norms, activations and softmax are not counted.
//
// Usage: bench_unet [--device cpu|cuda|cuda:N] [--sizes 256,512] [--reps N] [--no-bf16] [--plain]
//                   [--config path/to/config.json]
// --plain also times fp32 without oneDNN weight pre-packing (plain at::conv2d) for comparison (CPU only).
#include <unistd.h>

#include <filesystem>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>

#include <ATen/Context.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "models/blocks/layers.h"
#include "models/io/diffusers_folder.h"
#include "models/runtime.h"
#include "models/unet_2d_condition.h"
#include "parity/fixture.h"

using namespace clipgen;

using bench::peak_rss_gib;


int main(int argc, char** argv) {
  std::vector<int64_t> sizes = {256, 512};
  int reps = 2;
  bool bf16 = true, plain = false;
  std::string device_spec = "cpu";
  std::string config = bench::repo_file("tests/data/manifests/sd15/unet/config.json").string();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--sizes" && i + 1 < argc) {
      sizes = bench::int_list(argv[++i]);
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::stoi(argv[++i]);
    } else if (a == "--device" && i + 1 < argc) {
      device_spec = argv[++i];
    } else if (a == "--plain") {
      plain = true;
    } else if (a == "--no-bf16") {
      bf16 = false;
    } else if (a == "--config" && i + 1 < argc) {
      config = argv[++i];
    }
  }
  configure_threads(0);
  c10::Device device(c10::kCPU);
  try {
    device = parity::parse_fixture_device(device_spec);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_unet: %s\n", e.what());
    return 2;
  }
  const bool cuda = device.is_cuda();
  if (cuda) {  // strict fp32, as the fixture check runs
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
  }
  auto info = runtime_info();
  std::printf("bench_unet: UNet2DConditionModel, %s, random weights, batch 2, on %s\n", config.c_str(),
              device.str().c_str());
  std::printf("torch %s | intra-op threads %d | BLAS %s | oneDNN (MKLDNN) %s\n", info.torch_version.c_str(),
              info.intra_op_threads, info.blas_backend.c_str(), at::hasMKLDNN() ? "yes" : "no");
  std::printf("FLOPs: 2×MACs of conv/linear/attention matmuls, counted during the step\n");

  torch::NoGradGuard ng;
  auto cfg = UNet2DConditionConfig::from_json(io::read_json(config), config);
  torch::manual_seed(0);
  UNet2DConditionModel unet(cfg);
  unet->eval();
  unet->to(device);
  if (!cuda) blocks::set_fast_inference(*unet, true);
  plain = plain && !cuda;
  std::printf("parameters built; peak RSS %.2f GiB\n", peak_rss_gib());
  // A step's result is read back (one element), so a CUDA step is timed to its end, not to its launch.
  auto step = [&](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& c) {
    auto y = unet(x, t, c);
    (void)y.flatten()[0].item<float>();
    return y;
  };

  for (int64_t px : sizes) {
    const int64_t l = px / 8;
    auto sample = torch::randn({int64_t{2}, cfg.in_channels, l, l}).to(device);
    auto ctx = torch::randn({int64_t{2}, int64_t{77}, cfg.cross_attention_dim}).to(device);
    auto t = torch::tensor(981).to(device);
    blocks::FlopCounter::reset();
    blocks::FlopCounter::enable(true);
    auto ref = step(sample, t, ctx);  // warm-up (and FLOP count)
    blocks::FlopCounter::enable(false);
    const double gflop = blocks::FlopCounter::total() / 1e9;
    const double best = bench::best_seconds(reps, [&] { step(sample, t, ctx); });
    if (plain) {
      blocks::set_fast_inference(*unet, false);
      const double pbest = bench::best_seconds(reps, [&] { unet(sample, t, ctx); });
      blocks::set_fast_inference(*unet, true);
      std::printf("fp32  %4lld² without weight pre-packing (at::conv2d): %.2f s/step  %.1f GFLOP/s\n", (long long)px, pbest,
                  gflop / pbest);
    }
    std::printf("fp32  %4lld² (latent %lld²): %.4g s/step  %.1f GFLOP  %.1f GFLOP/s  peak RSS %.2f GiB\n",
                (long long)px, (long long)l, best, gflop, gflop / best, peak_rss_gib());
    std::vector<std::pair<const char*, c10::ScalarType>> reduced;
    if (bf16) reduced.push_back({"bf16", torch::kBFloat16});
    if (cuda) reduced.push_back({"fp16", torch::kHalf});
    for (const auto& [name, dtype] : reduced) try {
      unet->to(dtype);
      if (!cuda) blocks::set_fast_inference(*unet, true);
        auto sb = sample.to(dtype), cb = ctx.to(dtype);
      auto outb = step(sb, t, cb);  // warm-up
      const double bbest = bench::best_seconds(reps, [&] { outb = step(sb, t, cb); });
      if (plain) {
        blocks::set_fast_inference(*unet, false);
        const double pb = bench::best_seconds(reps, [&] { step(sb, t, cb); });
        blocks::set_fast_inference(*unet, true);
        std::printf("%s  %4lld² without weight pre-packing (at::conv2d): %.2f s/step  %.1f GFLOP/s\n", name,
                    (long long)px, pb, gflop / pb);
      }
      const double err = (outb.to(torch::kFloat) - ref).abs().max().item<double>();
      const double range = ref.abs().max().item<double>();
      std::printf("%s  %4lld²: %.4g s/step  %.1f GFLOP/s  max|%s−fp32| %.3g (%.2g of max|fp32| %.3g)  peak RSS %.2f GiB\n",
                  name, (long long)px, bbest, gflop / bbest, name, err, err / range, range, peak_rss_gib());
      unet->to(torch::kFloat);
      if (!cuda) blocks::set_fast_inference(*unet, true);
    } catch (const std::exception& e) {
      std::printf("%s: not available here (%s)\n", name, std::string(e.what()).substr(0, 200).c_str());
      unet->to(torch::kFloat);
    }
    std::fflush(stdout);
  }
  return 0;
}
