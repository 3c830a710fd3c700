// SD VAE (AutoencoderKL, tests/data/manifests/sd15/vae/config.json, random weights) decode of one latent at
// 256² and 512² output, on CPU; fp32 and (where the CPU has bf16) bf16 with its error against fp32.
// Prints threads, BLAS backend, time, GFLOP/s (2×MACs of conv/linear/attention matmuls) and peak RSS.
//
// Usage: bench_vae [--sizes 256,512] [--batch N] [--reps N] [--no-bf16]
#include <unistd.h>

#include <filesystem>

#include <chrono>
#include <cstdio>
#include <sstream>

#include <ATen/Context.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "models/autoencoder_kl.h"
#include "models/blocks/layers.h"
#include "models/io/diffusers_folder.h"
#include "models/runtime.h"

using namespace clipgen;

using bench::peak_rss_gib;


int main(int argc, char** argv) {
  std::vector<int64_t> sizes = {256, 512};
  int reps = 2;
  int64_t batch = 1;
  bool bf16 = true;
  const std::string config = bench::repo_file("tests/data/manifests/sd15/vae/config.json").string();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--sizes" && i + 1 < argc) {
      sizes = bench::int_list(argv[++i]);
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::stoi(argv[++i]);
    } else if (a == "--batch" && i + 1 < argc) {
      batch = std::stoll(argv[++i]);
    } else if (a == "--no-bf16") {
      bf16 = false;
    }
  }
  configure_threads(0);
  auto info = runtime_info();
  std::printf("bench_vae: AutoencoderKL.decode, %s, random weights, batch %lld\n", config.c_str(), (long long)batch);
  std::printf("torch %s | intra-op threads %d | BLAS %s | oneDNN (MKLDNN) %s\n", info.torch_version.c_str(),
              info.intra_op_threads, info.blas_backend.c_str(), at::hasMKLDNN() ? "yes" : "no");
  torch::NoGradGuard ng;
  auto cfg = AutoencoderKLConfig::from_json(io::read_json(config), config);
  torch::manual_seed(0);
  AutoencoderKL vae(cfg);
  vae->eval();
  blocks::set_fast_inference(*vae, true);
  for (int64_t px : sizes) {
    auto z = torch::randn({batch, cfg.latent_channels, px / 8, px / 8});
    blocks::FlopCounter::reset();
    blocks::FlopCounter::enable(true);
    auto ref = vae->decode(z);
    blocks::FlopCounter::enable(false);
    const double gflop = blocks::FlopCounter::total() / 1e9;
    const double best = bench::best_seconds(reps, [&] { vae->decode(z); });
    std::printf("fp32  decode %4lld²: %.2f s  %.1f GFLOP  %.1f GFLOP/s  peak RSS %.2f GiB\n", (long long)px, best, gflop,
                gflop / best, peak_rss_gib());
    if (bf16) try {
      vae->to(torch::kBFloat16);
      blocks::set_fast_inference(*vae, true);
      auto zb = z.to(torch::kBFloat16);
      auto outb = vae->decode(zb);
      const double bbest = bench::best_seconds(reps, [&] { outb = vae->decode(zb); });
      const double err = (outb.to(torch::kFloat) - ref).abs().max().item<double>();
      std::printf("bf16  decode %4lld²: %.2f s  %.1f GFLOP/s  max|bf16−fp32| %.3g (max|fp32| %.3g)  peak RSS %.2f GiB\n",
                  (long long)px, bbest, gflop / bbest, err, ref.abs().max().item<double>(), peak_rss_gib());
      vae->to(torch::kFloat);
      blocks::set_fast_inference(*vae, true);
    } catch (const std::exception& e) {
      std::printf("bf16: not available here (%s)\n", std::string(e.what()).substr(0, 200).c_str());
      vae->to(torch::kFloat);
    }
    std::fflush(stdout);
  }
  return 0;
}
