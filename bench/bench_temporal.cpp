// Stable Video Diffusion on CPU, random weights at SVD-XT size (tests/data/manifests/svd_xt/*/config.json):
//   1. AutoencoderKLTemporalDecoder.decode_chunked at 8, 16 and 32 frames with a fixed decode_chunk: time and
//      peak RSS, to show memory is bounded by the chunk, not the frame count;
//   2. one UNetSpatioTemporalConditionModel step (batch 2 for classifier-free guidance, 14 frames) at a
//      reduced raster.
// Each measurement runs in its own child process (this binary re-executed with --child), so every peak RSS
// (VmHWM) is that measurement's own. VmHWM is reset (/proc/self/clear_refs) after the model is built and its
// inputs are allocated, so "peak during call" counts the weights plus what the call itself needs.
// Prints figures only; never asserts. On a busy 2-core machine the default 256x448 raster takes tens of
// minutes (about 0.5 TFLOP per decoded frame; ~10 TFLOP for the UNet step); --raster 128x192 is ~4x cheaper.
// (The bench CMake target links clipgen_pipeline; the binary itself needs only clipgen_models.)
//
//   --bf16 reruns each measurement with the model and inputs in bf16 (what `precision: bf16` renders with)
//   and prints its time and its error against the float32 output.
//
// Usage: bench_temporal [--frames 8,16,32] [--chunk 8] [--raster 256x448] [--unet-frames 14] [--no-unet]
//                       [--no-decoder] [--bf16] [--threads N]
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/Context.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "models/autoencoder_kl_temporal_decoder.h"
#include "models/blocks/layers.h"
#include "models/io/diffusers_folder.h"
#include "models/runtime.h"
#include "models/unet_spatio_temporal_condition.h"

using namespace clipgen;

namespace {

double status_gib(const char* key) {  // a "VmXxx:  123 kB" line of /proc/self/status, in GiB
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(std::string(key).size())) / (1024.0 * 1024.0);
  return -1;
}

void reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";  // resets VmHWM to the current RSS (Linux ≥ 4.0)
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// tests/data/manifests/svd_xt/<rel> (see bench::repo_file).
std::string manifest(const std::string& rel) {
  return bench::repo_file("tests/data/manifests/svd_xt/" + rel).string();
}

// bf16 rerun of the same model and inputs after the float32 measurement: time, and max |bf16 − fp32| of the
// output relative to the float32 output's largest magnitude (the error `precision: bf16` costs).
template <class Run>
void bf16_rerun(const char* what, torch::nn::Module& m, Run&& run, const at::Tensor& ref, double fp32_secs) {
  m.to(torch::kBFloat16);
  reset_peak_rss();
  auto t0 = std::chrono::steady_clock::now();
  const at::Tensor out = run().to(torch::kFloat);
  const double secs = seconds_since(t0);
  const double err = (out - ref).abs().max().item<double>() / ref.abs().max().item<double>();
  std::printf("%s bf16: %.2f s (%.2fx fp32)  max|bf16 − fp32| %.3g of max|fp32|  peak during call %.2f GiB\n", what,
              secs, fp32_secs / secs, err, status_gib("VmHWM:"));
}

int child_decoder(int threads, int64_t frames, int64_t chunk, int64_t h, int64_t w, bool bf16) {
  configure_threads(threads);
  torch::NoGradGuard ng;
  const auto path = manifest("vae/config.json");
  auto cfg = AutoencoderKLTemporalDecoderConfig::from_json(io::read_json(path), path);
  torch::manual_seed(0);
  AutoencoderKLTemporalDecoder vae(cfg);
  vae->eval();
  auto lat = torch::randn({frames, cfg.latent_channels, h / 8, w / 8});
  const double rss0 = status_gib("VmRSS:");
  reset_peak_rss();
  auto t0 = std::chrono::steady_clock::now();
  auto out = vae->decode_chunked(lat, frames, chunk);
  const double secs = seconds_since(t0);
  const double peak = status_gib("VmHWM:");
  std::printf("decoder  frames %3lld  chunk %2lld  out [%lld,3,%lld,%lld]  time %7.2f s (%.2f s/frame)  "
              "RSS before %.2f GiB  peak during call %.2f GiB  (+%.2f GiB)\n",
              (long long)frames, (long long)chunk, (long long)out.size(0), (long long)out.size(2),
              (long long)out.size(3), secs, secs / frames, rss0, peak, peak - rss0);
  if (bf16) {
    auto lb = lat.to(torch::kBFloat16);
    bf16_rerun("decoder ", *vae, [&] { return vae->decode_chunked(lb, frames, chunk); }, out, secs);
  }
  return 0;
}

int child_unet(int threads, int64_t frames, int64_t h, int64_t w, bool bf16) {
  configure_threads(threads);
  torch::NoGradGuard ng;
  const auto path = manifest("unet/config.json");
  auto cfg = UNetSpatioTemporalConditionConfig::from_json(io::read_json(path), path);
  torch::manual_seed(0);
  auto tb = std::chrono::steady_clock::now();
  UNetSpatioTemporalConditionModel unet(cfg);  // default (uniform) init: real values, no denormal garbage
  unet->eval();
  int64_t params = 0;
  for (const auto& p : unet->parameters()) params += p.numel();
  const double build = seconds_since(tb);
  const int64_t B = 2;  // classifier-free guidance: [uncond; cond]
  auto sample = torch::randn({B, frames, cfg.in_channels, h / 8, w / 8});
  auto ehs = torch::randn({B, 1, cfg.cross_attention_dim[0]});
  auto ids = torch::tensor({6.0f, 127.0f, 0.02f}).repeat({B, 1});  // [fps − 1, motion_bucket_id, noise_aug]
  auto t = torch::tensor(0.25f * std::log(700.0f));                  // EDM c_noise of sigma_max
  const double rss0 = status_gib("VmRSS:");
  reset_peak_rss();
  blocks::FlopCounter::reset();
  blocks::FlopCounter::enable(true);
  auto t0 = std::chrono::steady_clock::now();
  auto out = unet->forward(sample, t, ehs, ids);
  const double secs = seconds_since(t0);
  blocks::FlopCounter::enable(false);
  const double peak = status_gib("VmHWM:");
  std::printf("unet     %.3f B params (built in %.1f s)  sample [%lld,%lld,%lld,%lld,%lld]  one step %.2f s  "
              "%.1f GFLOP (%.1f GFLOP/s)  RSS before %.2f GiB  peak during call %.2f GiB  (+%.2f GiB)  finite %s\n",
              params / 1e9, build, (long long)B, (long long)frames, (long long)cfg.in_channels, (long long)h / 8,
              (long long)w / 8, secs, blocks::FlopCounter::total() / 1e9,
              blocks::FlopCounter::total() / 1e9 / secs, rss0, peak, peak - rss0,
              torch::isfinite(out).all().item<bool>() ? "yes" : "NO");
  if (bf16) {
    auto sb = sample.to(torch::kBFloat16), eb = ehs.to(torch::kBFloat16), ib = ids.to(torch::kBFloat16);
    bf16_rerun("unet    ", *unet, [&] { return unet->forward(sb, t, eb, ib); }, out, secs);
  }
  return 0;
}

int run_child(const std::vector<std::string>& args) {
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    std::string self = "/proc/self/exe";
    argv.push_back(self.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    std::perror("execv");
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    std::printf("  (child %s exited abnormally: status %d%s)\n", args.size() > 1 ? args[1].c_str() : "?", st,
                WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? ", killed — out of memory?" : "");
  return st;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> frames = {8, 16, 32};
  int64_t chunk = 8, unet_frames = 14, h = 256, w = 448;
  int threads = 0;
  bool do_unet = true, do_decoder = true, bf16 = false;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "--child") {
    // --child decoder THREADS FRAMES CHUNK H W BF16 | --child unet THREADS FRAMES H W BF16
    if (args.size() == 8 && args[1] == "decoder")
      return child_decoder(std::stoi(args[2]), std::stoll(args[3]), std::stoll(args[4]), std::stoll(args[5]),
                           std::stoll(args[6]), args[7] == "1");
    if (args.size() == 7 && args[1] == "unet")
      return child_unet(std::stoi(args[2]), std::stoll(args[3]), std::stoll(args[4]), std::stoll(args[5]),
                        args[6] == "1");
    std::fprintf(stderr, "bad --child arguments\n");
    return 2;
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    auto next = [&] { return i + 1 < args.size() ? args[++i] : std::string(); };
    if (a == "--frames") {
      frames = bench::int_list(next());
    } else if (a == "--chunk") chunk = std::stoll(next());
    else if (a == "--unet-frames") unet_frames = std::stoll(next());
    else if (a == "--raster") {
      auto r = next();
      auto x = r.find('x');
      h = std::stoll(r.substr(0, x));
      w = std::stoll(r.substr(x + 1));
    } else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--no-unet") do_unet = false;
    else if (a == "--no-decoder") do_decoder = false;
    else if (a == "--bf16") bf16 = true;
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (h % 64 != 0 || w % 64 != 0) {
    std::fprintf(stderr, "--raster must be multiples of 64 (latents divisible by 8), got %lldx%lld\n", (long long)h,
                 (long long)w);
    return 2;
  }
  const int used = configure_threads(threads);
  auto info = runtime_info();
  std::printf("bench_temporal: SVD-XT configs (%s), random weights, float32, CPU, raster %lldx%lld (latents %lldx%lld)\n",
              manifest("").c_str(), (long long)h, (long long)w, (long long)h / 8, (long long)w / 8);
  std::printf("torch %s | intra-op threads %d | BLAS %s | oneDNN (MKLDNN) %s | usable cores %d\n",
              info.torch_version.c_str(), used, info.blas_backend.c_str(), at::hasMKLDNN() ? "yes" : "no",
              usable_cores());
  const std::string th = std::to_string(used);
  if (do_decoder)
    for (auto f : frames)
      run_child({"--child", "decoder", th, std::to_string(f), std::to_string(chunk), std::to_string(h), std::to_string(w),
                 bf16 ? "1" : "0"});
  if (do_unet)
    run_child({"--child", "unet", th, std::to_string(unet_frames), std::to_string(h), std::to_string(w), bf16 ? "1" : "0"});
  return 0;
}
