// LibTorch runtime setup and facts: intra-op threads, BLAS backend, devices, build.
#pragma once
#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

namespace clipgen {

struct RuntimeInfo {
  std::string torch_version;   // e.g. "1.13.1"
  bool cuda_build = false;     // LibTorch built with CUDA
  std::string blas_backend;    // the shared library providing BLAS (e.g. "openblas-openmp"), from /proc/self/maps;
                               // else what LibTorch was built with (see blas_from_build_config)
  int intra_op_threads = 1;
  int inter_op_threads = 1;
  std::vector<std::string> devices;  // "cpu", "cuda:0", ...
  bool cpu_native_bf16 = false;      // see cpu_has_native_bf16()
  std::string cxx_runtime;           // see cxx_runtime() in core/fs.h
};

// Number of cores this process may use (sched_getaffinity), at least 1.
int usable_cores();

// Sets LibTorch's intra-op threads (0 = usable cores) and returns the value in effect. Debian's
// LibTorch otherwise runs one thread. Call once at start-up, before any parallel work.
int configure_threads(int requested);

RuntimeInfo runtime_info();

// The BLAS a LibTorch build links statically, from its at::show_config() text ("Build settings:
// BLAS_INFO=mkl, ..."): e.g. "mkl (linked into LibTorch, BLAS_INFO=mkl)". PyTorch's wheels carry MKL inside
// libtorch_cpu.so, so no BLAS library shows in /proc/self/maps. Empty when the build names none, or only
// "generic" (Debian's: the BLAS is whichever shared library the system's alternatives select).
std::string blas_from_build_config(const std::string& show_config);

// The CPU does bf16 arithmetic in hardware (avx512_bf16 or amx_bf16 in /proc/cpuinfo). Without it,
// LibTorch still runs bf16 models, emulated, usually slower than fp32.
bool cpu_has_native_bf16();

// A shot's `precision` ("auto", "fp32", "bf16", "fp16") as the dtype of the model weights on `device`:
// "auto" is fp32 on the CPU and fp16 on CUDA. fp16 on the CPU is refused (UnsupportedError): LibTorch's
// CPU kernels lack half-precision convolutions (1.13) or run them far slower than fp32.
c10::ScalarType resolve_precision(const std::string& precision, const c10::Device& device);

// The dtype a VAE runs in when its model runs in `dtype`: float32 for fp16 when the VAE's config says
// force_upcast (as diffusers' pipelines upcast such VAEs; SDXL's overflows in fp16), else `dtype`.
c10::ScalarType vae_dtype_for(c10::ScalarType dtype, bool force_upcast);

// "fp32", "bf16", "fp16" for those dtypes (the dtype's own name otherwise).
std::string precision_name(c10::ScalarType dtype);

// Parses a device list ("cpu", "cuda", "cuda:0,cuda:1", "auto"); throws UsageError on a bad entry
// or a CUDA device that is not available.
std::vector<std::string> parse_device_list(const std::string& spec);

}  // namespace clipgen
