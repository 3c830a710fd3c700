// CLIP text encoders at SD size with random weights, batch × 77 tokens, on CPU: time per forward.
// Default: CLIP-L (tests/data/manifests/sd15/text_encoder/config.json, SD 1.x and SDXL text_encoder), batch 2
// (the CFG pair). --model bigg adds OpenCLIP bigG with projection (SDXL text_encoder_2), --model h the
// OpenCLIP-H text encoder of SD 2.x. Prints threads, BLAS backend, ms per forward (best and median of
// --reps), GFLOP/s (2×MACs of Linear layers) and peak RSS. Never asserts.
//
// Usage: bench_text_encoder [--model l|h|bigg|all] [--batch N] [--reps N] [--threads N]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "bench/bench_util.h"
#include "models/blocks/layers.h"
#include "models/clip_text_model.h"
#include "models/runtime.h"

using namespace clipgen;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

using bench::peak_rss_gib;


template <class Model>
static void run(const char* label, const fs::path& config, int64_t batch, int reps) {
  auto cfg = CLIPTextConfig::from_file(config);
  torch::manual_seed(0);
  Model m(cfg);
  m->eval();
  int64_t params = 0;
  for (const auto& p : m->parameters()) params += p.numel();
  // Token ids as a tokenizer would make them: BOS, words, EOS, padding.
  auto ids = torch::randint(300, 40000, {batch, 77}, torch::kLong);
  ids.select(1, 0).fill_(49406);
  ids.slice(1, 20).fill_(49407);
  CLIPTextForwardOptions opt;
  opt.output_hidden_states = true;  // SDXL / clip-skip need the penultimate state
  torch::InferenceMode guard;
  m(ids, opt);  // warm-up
  blocks::FlopCounter::reset();
  blocks::FlopCounter::enable(true);
  m(ids, opt);
  blocks::FlopCounter::enable(false);
  const double flops = blocks::FlopCounter::total();
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    auto o = m(ids, opt);
    (void)o.last_hidden_state.sum().template item<float>();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double best = ms.front(), median = ms[ms.size() / 2];
  std::printf("%-34s %5.0fM params  batch %lld x 77  best %8.1f ms  median %8.1f ms  %6.1f GFLOP/s  peak RSS %.2f GiB\n", label,
              params / 1e6, (long long)batch, best, median, flops > 0 ? flops / (best * 1e-3) / 1e9 : 0.0, peak_rss_gib());
}

int main(int argc, char** argv) {
  std::string model = "l";
  int64_t batch = 2;
  int reps = 5, threads = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--model" && i + 1 < argc) model = argv[++i];
    else if (a == "--batch" && i + 1 < argc) batch = std::stoll(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::stoi(argv[++i]));
    else if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: bench_text_encoder [--model l|h|bigg|all] [--batch N] [--reps N] [--threads N]\n");
      return 2;
    }
  }
  configure_threads(threads);
  auto info = runtime_info();
  std::printf("bench_text_encoder: CLIP text encoders, random weights, fp32, CPU\n");
  std::printf("torch %s | intra-op threads %d | inter-op threads %d | BLAS %s\n", info.torch_version.c_str(),
              info.intra_op_threads, info.inter_op_threads, info.blas_backend.c_str());
  if (model == "l" || model == "all")
    run<CLIPTextModel>("CLIP-L (sd15/text_encoder)", bench::repo_file("tests/data/manifests/sd15/text_encoder/config.json"), batch, reps);
  if (model == "h" || model == "all")
    run<CLIPTextModel>("OpenCLIP-H (sd21/text_encoder)", bench::repo_file("tests/data/manifests/sd21/text_encoder/config.json"), batch, reps);
  if (model == "bigg" || model == "all")
    run<CLIPTextModelWithProjection>("OpenCLIP-bigG (sdxl text_encoder_2)",
                                     bench::repo_file("tests/data/manifests/sdxl_base/text_encoder_2/config.json"), batch, reps);
  return 0;
}
