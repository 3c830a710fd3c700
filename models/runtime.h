// LibTorch runtime setup and facts: intra-op threads, BLAS backend, devices, build.
#pragma once
#include <string>
#include <vector>

namespace clipgen {

struct RuntimeInfo {
  std::string torch_version;   // e.g. "1.13.1"
  bool cuda_build = false;     // LibTorch built with CUDA
  std::string blas_backend;    // the shared library providing BLAS (e.g. "openblas-openmp"), from /proc/self/maps
  int intra_op_threads = 1;
  int inter_op_threads = 1;
  std::vector<std::string> devices;  // "cpu", "cuda:0", ...
};

// Number of cores this process may use (sched_getaffinity), at least 1.
int usable_cores();

// Sets LibTorch's intra-op threads (0 = usable cores) and returns the value in effect. Debian's
// LibTorch otherwise runs one thread. Call once at start-up, before any parallel work.
int configure_threads(int requested);

RuntimeInfo runtime_info();

// Parses a device list ("cpu", "cuda", "cuda:0,cuda:1", "auto"); throws UsageError on a bad entry
// or a CUDA device that is not available.
std::vector<std::string> parse_device_list(const std::string& spec);

}  // namespace clipgen
