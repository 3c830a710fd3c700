// Loading cost of a large safetensors file: generates a ≥ 1 GB float16 file in /tmp (removed at the end),
// then loads it in separate child processes (clean peaks) in three modes and prints wall time and peak
// RSS (getrusage ru_maxrss and /proc/self/status VmHWM):
//   fp16-view   every tensor as a zero-copy view of the mapping (no data touched)
//   fp16-touch  the same views, every byte read (the mapped pages become resident)
//   fp32        every tensor converted to float32 on load (one fresh tensor each, no intermediate copy)
// The fp16 modes must stay within ~1.1× the file size. Figures only, no assertions.
//   bench_load [--gib 1.0] [--dir /tmp]
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <torch/torch.h>

#include "models/io/safetensors.h"

namespace {

long vm_hwm_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Runs in a child process: prints one line of figures.
int run_mode(const std::string& mode, const std::filesystem::path& path, double file_mib) {
  const long hwm0 = vm_hwm_kib();
  const double t0 = now_s();
  auto f = clipgen::io::SafetensorsFile::open(path);
  clipgen::io::TensorMap out;
  double checksum = 0;
  if (mode == "fp32") {
    out = f->load_all(torch::kFloat);
  } else {
    out = f->load_all(torch::kHalf);
    if (mode == "fp16-touch")
      for (auto& [n, t] : out) checksum += t.to(torch::kFloat).sum().item<double>();  // reads every page (per-tensor temporaries)
  }
  const double t1 = now_s();
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  const double rss_mib = ru.ru_maxrss / 1024.0;
  const double hwm_mib = vm_hwm_kib() / 1024.0;
  size_t bytes = 0;
  for (auto& [n, t] : out) bytes += t.numel() * t.element_size();
  std::printf("%-10s  %8.3f s  ru_maxrss %8.1f MiB  VmHWM %8.1f MiB (%.2f× file; process baseline %.1f MiB)  tensors %zu, %.1f MiB held%s\n",
              mode.c_str(), t1 - t0, rss_mib, hwm_mib, hwm_mib / file_mib, hwm0 / 1024.0, out.size(),
              bytes / 1048576.0, checksum == 12345.678 ? "!" : "");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  double gib = 1.0;
  std::filesystem::path dir = "/tmp";
  std::string child_mode, child_path;
  double child_mib = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--gib" && i + 1 < argc) gib = std::stod(argv[++i]);
    else if (a == "--dir" && i + 1 < argc) dir = argv[++i];
    else if (a == "--child" && i + 3 < argc) {
      child_mode = argv[++i];
      child_path = argv[++i];
      child_mib = std::stod(argv[++i]);
    }
  }
  if (!child_mode.empty()) return run_mode(child_mode, child_path, child_mib);

  torch::set_num_threads(1);
  const auto path = dir / ("clipgen_bench_load_" + std::to_string(::getpid()) + ".safetensors");
  // 1280×1280 fp16 tensors (3.125 MiB each) up to `gib`: like a UNet's large linear layers.
  const int64_t per = 1280 * 1280;
  const int64_t n = static_cast<int64_t>(gib * 1073741824.0 / (per * 2)) + 1;
  {
    std::printf("generating %lld float16 tensors [1280, 1280] in %s ...\n", static_cast<long long>(n), path.c_str());
    clipgen::io::TensorMap t;
    auto base = torch::randn({1280, 1280}).to(torch::kHalf);
    for (int64_t i = 0; i < n; ++i) t["layer." + std::to_string(i) + ".weight"] = base;  // shared data: cheap to write
    clipgen::io::save_safetensors(path, t);
  }
  const double file_mib = std::filesystem::file_size(path) / 1048576.0;
  std::printf("file: %.1f MiB (%.3f GB), LibTorch %s, %d thread(s)\n", file_mib, file_mib * 1048576.0 / 1e9,
              TORCH_VERSION, torch::get_num_threads());
  for (const char* mode : {"fp16-view", "fp16-touch", "fp32"}) {
    std::fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      execl("/proc/self/exe", argv[0], "--child", mode, path.c_str(), std::to_string(file_mib).c_str(), (char*)nullptr);
      _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
  }
  std::filesystem::remove(path);
  return 0;
}
