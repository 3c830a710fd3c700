// One UNet2DConditionModel step at the SD1.5 configuration (tests/data/manifests/sd15/unet/config.json,
// random weights), batch 2 (classifier-free guidance), 256² and 512² images (32² and 64² latents), on CPU.
// Prints threads, BLAS backend, oneDNN availability, time per step, GFLOP/s and peak RSS, in fp32 and —
// where the CPU has bf16 instructions — in bf16, with bf16's error against fp32.
//
// FLOPs are counted while the step runs by blocks::FlopCounter: 2 × multiply-accumulates of every
// Conv2d, Linear and attention matmul (QKᵀ and PV); norms, activations and softmax are not counted.
//
// Usage: bench_unet [--sizes 256,512] [--reps N] [--no-bf16] [--plain] [--config path/to/config.json]
// --plain also times fp32 without oneDNN weight pre-packing (plain at::conv2d) for comparison.
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

using namespace clipgen;

using bench::peak_rss_gib;


int main(int argc, char** argv) {
  std::vector<int64_t> sizes = {256, 512};
  int reps = 2;
  bool bf16 = true, plain = false;
  std::string config = bench::repo_file("tests/data/manifests/sd15/unet/config.json").string();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--sizes" && i + 1 < argc) {
      sizes.clear();
      std::stringstream ss(argv[++i]);
      for (std::string s; std::getline(ss, s, ',');) sizes.push_back(std::stoll(s));
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::stoi(argv[++i]);
    } else if (a == "--plain") {
      plain = true;
    } else if (a == "--no-bf16") {
      bf16 = false;
    } else if (a == "--config" && i + 1 < argc) {
      config = argv[++i];
    }
  }
  configure_threads(0);
  auto info = runtime_info();
  std::printf("bench_unet: UNet2DConditionModel, %s, random weights, batch 2\n", config.c_str());
  std::printf("torch %s | intra-op threads %d | BLAS %s | oneDNN (MKLDNN) %s\n", info.torch_version.c_str(),
              info.intra_op_threads, info.blas_backend.c_str(), at::hasMKLDNN() ? "yes" : "no");
  std::printf("FLOPs: 2×MACs of conv/linear/attention matmuls, counted during the step\n");

  torch::NoGradGuard ng;
  auto cfg = UNet2DConditionConfig::from_json(io::read_json(config), config);
  torch::manual_seed(0);
  UNet2DConditionModel unet(cfg);
  unet->eval();
  blocks::set_fast_inference(*unet, true);
  std::printf("parameters built; peak RSS %.2f GiB\n", peak_rss_gib());

  for (int64_t px : sizes) {
    const int64_t l = px / 8;
    auto sample = torch::randn({int64_t{2}, cfg.in_channels, l, l});
    auto ctx = torch::randn({int64_t{2}, int64_t{77}, cfg.cross_attention_dim});
    auto t = torch::tensor(981);
    blocks::FlopCounter::reset();
    blocks::FlopCounter::enable(true);
    auto ref = unet(sample, t, ctx);  // warm-up (and FLOP count)
    blocks::FlopCounter::enable(false);
    const double gflop = blocks::FlopCounter::total() / 1e9;
    const double best = bench::best_seconds(reps, [&] { unet(sample, t, ctx); });
    if (plain) {
      blocks::set_fast_inference(*unet, false);
      const double pbest = bench::best_seconds(reps, [&] { unet(sample, t, ctx); });
      blocks::set_fast_inference(*unet, true);
      std::printf("fp32  %4lld² without weight pre-packing (at::conv2d): %.2f s/step  %.1f GFLOP/s\n", (long long)px, pbest,
                  gflop / pbest);
    }
    std::printf("fp32  %4lld² (latent %lld²): %.2f s/step  %.1f GFLOP  %.1f GFLOP/s  peak RSS %.2f GiB\n", (long long)px,
                (long long)l, best, gflop, gflop / best, peak_rss_gib());
    if (bf16) try {
      unet->to(torch::kBFloat16);
      blocks::set_fast_inference(*unet, true);
      auto sb = sample.to(torch::kBFloat16), cb = ctx.to(torch::kBFloat16);
      auto outb = unet(sb, t, cb);  // warm-up
      const double bbest = bench::best_seconds(reps, [&] { outb = unet(sb, t, cb); });
      if (plain) {
        blocks::set_fast_inference(*unet, false);
        const double pb = bench::best_seconds(reps, [&] { unet(sb, t, cb); });
        blocks::set_fast_inference(*unet, true);
        std::printf("bf16  %4lld² without weight pre-packing (at::conv2d): %.2f s/step  %.1f GFLOP/s\n",
                    (long long)px, pb, gflop / pb);
      }
      const double err = (outb.to(torch::kFloat) - ref).abs().max().item<double>();
      const double range = ref.abs().max().item<double>();
      std::printf("bf16  %4lld²: %.2f s/step  %.1f GFLOP/s  max|bf16−fp32| %.3g (%.2g of max|fp32| %.3g)  peak RSS %.2f GiB\n",
                  (long long)px, bbest, gflop / bbest, err, err / range, range, peak_rss_gib());
      unet->to(torch::kFloat);
      blocks::set_fast_inference(*unet, true);
    } catch (const std::exception& e) {
      std::printf("bf16: not available here (%s)\n", std::string(e.what()).substr(0, 200).c_str());
      unet->to(torch::kFloat);
    }
    std::fflush(stdout);
  }
  return 0;
}
