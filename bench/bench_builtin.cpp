// The built-in model end to end: `clipgen run examples/quickstart.yaml` in-process (a 4-second vertical
// short, 1080x1920 H.264), its wall time split by stage as the run report records it, then the pieces of
// one keyframe (text encoder, one UNet step with CFG, VAE decode). Figures printed, never asserted.
//   bench_builtin [--threads N] [--shot FILE]
#include <chrono>
#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <torch/torch.h>

#include "bench/bench_util.h"
#include "configs/preset.h"
#include "configs/shot.h"
#include "models/runtime.h"
#include "pipeline/render.h"
#include "pipeline/report.h"
#include "stages/keyframe.h"

using namespace clipgen;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  int threads = 0;
  fs::path shot = bench::repo_file("examples/quickstart.yaml");
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--threads") threads = std::stoi(argv[++i]);
    else if (std::string(argv[i]) == "--shot") shot = argv[++i];
  }
  const int t = configure_threads(threads);
  const auto info = runtime_info();
  fmt::print("bench_builtin: {} intra-op threads, BLAS {}, model {}\n", t, info.blas_backend,
             configs::builtin_keyframe_model().string());

  const fs::path out = fs::temp_directory_path() / "clipgen-bench-builtin";
  fs::remove_all(out);
  configs::LoadOptions lo;
  lo.out_root = out;
  const auto list = configs::load_shots({shot}, lo);
  pipeline::RenderOptions ro;
  ro.out_root = out;
  ro.checkpoints = false;
  pipeline::RunReport report;
  const auto t0 = std::chrono::steady_clock::now();
  pipeline::render_shots(list, ro, report);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& s : report.shots) {
    fmt::print("{}: {} frames at {}x{} → {}\n", s.id, list.shots[0].frames, list.shots[0].preset.width,
               list.shots[0].preset.height, s.output.string());
    for (const auto& [stage, sec] : s.stage_seconds) fmt::print("  {:<10} {:7.2f} s\n", stage, sec);
  }
  fmt::print("end to end (model load included): {:.2f} s wall, peak RSS {:.2f} GiB\n", wall, bench::peak_rss_gib());

  // One keyframe's pieces at the built-in raster.
  auto m = stages::load_sd_pipeline(configs::builtin_keyframe_model());
  torch::NoGradGuard ng;
  const auto ids = torch::zeros({2, 77}, torch::kLong);
  const auto ctx = m.text_encoder->forward(ids).last_hidden_state;
  const auto x = torch::randn({2, 4, 28, 16});
  const auto ts = torch::full({2}, 500.0);
  const auto z = torch::randn({1, 4, 28, 16});
  fmt::print("text encoder, batch 2 × 77 tokens: {:.1f} ms\n",
             1e3 * bench::best_seconds(5, [&] { m.text_encoder->forward(ids); }));
  fmt::print("UNet step, batch 2 (CFG) at 16x28 latents: {:.1f} ms\n",
             1e3 * bench::best_seconds(5, [&] { m.unet->forward(x, ts, ctx); }));
  fmt::print("VAE decode 64x112: {:.1f} ms\n", 1e3 * bench::best_seconds(5, [&] { m.vae->decode(z); }));
  stages::KeyframeRequest r;
  r.prompt = "a red ball over snow at sunset";
  r.width = 64;
  r.height = 112;
  fmt::print("one keyframe (Euler, 25 steps, CFG 7.5): {:.2f} s\n",
             bench::best_seconds(3, [&] { stages::generate_keyframe(m, r); }));
  fs::remove_all(out);
  return 0;
}
