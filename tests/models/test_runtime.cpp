// models/runtime: threads, BLAS, and the precision a shot's `precision` means on a device.
#include <ATen/Version.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <string>

#include "core/error.h"
#include "models/runtime.h"

using namespace clipgen;

TEST(Runtime, ConfigureThreadsSetsWhatItReturns) {
  EXPECT_EQ(configure_threads(1), 1);
  EXPECT_EQ(at::get_num_threads(), 1);
  const int n = configure_threads(0);
  EXPECT_EQ(n, usable_cores());
  EXPECT_EQ(at::get_num_threads(), n);
}

TEST(Runtime, AutoPrecisionIsFp32OnCpuAndFp16OnCuda) {
  const c10::Device cpu(c10::kCPU), cuda(c10::kCUDA, 0);  // a Device value needs no GPU
  EXPECT_EQ(resolve_precision("auto", cpu), c10::kFloat);
  EXPECT_EQ(resolve_precision("auto", cuda), c10::kHalf);
  EXPECT_EQ(resolve_precision("fp32", cuda), c10::kFloat);
  EXPECT_EQ(resolve_precision("bf16", cpu), c10::kBFloat16);
  EXPECT_EQ(resolve_precision("bf16", cuda), c10::kBFloat16);
  EXPECT_EQ(resolve_precision("fp16", cuda), c10::kHalf);
  EXPECT_EQ(precision_name(c10::kBFloat16), "bf16");
  EXPECT_EQ(precision_name(c10::kHalf), "fp16");
  EXPECT_EQ(precision_name(c10::kFloat), "fp32");
}

TEST(Runtime, Fp16OnTheCpuIsAClearError) {
  try {
    resolve_precision("fp16", c10::Device(c10::kCPU));
    FAIL() << "expected an error";
  } catch (const UnsupportedError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("fp16 needs a CUDA device"), std::string::npos) << m;
    EXPECT_NE(m.find("bf16"), std::string::npos) << m;  // says what to use instead
  }
  EXPECT_THROW(resolve_precision("fp8", c10::Device(c10::kCPU)), UsageError);
}

TEST(Runtime, VaeStaysFloat32OnlyForFp16WithForceUpcast) {
  EXPECT_EQ(vae_dtype_for(c10::kHalf, true), c10::kFloat);
  EXPECT_EQ(vae_dtype_for(c10::kHalf, false), c10::kHalf);
  EXPECT_EQ(vae_dtype_for(c10::kBFloat16, true), c10::kBFloat16);  // bf16 has fp32's range: no upcast
  EXPECT_EQ(vae_dtype_for(c10::kFloat, true), c10::kFloat);
}

TEST(Runtime, NativeBf16MatchesTheCpuFlags) {
  std::ifstream f("/proc/cpuinfo");
  bool flag = false;
  for (std::string line; std::getline(f, line);)
    if (line.rfind("flags", 0) == 0) {
      flag = line.find(" avx512_bf16") != std::string::npos || line.find(" amx_bf16") != std::string::npos;
      break;
    }
  EXPECT_EQ(cpu_has_native_bf16(), flag);
  EXPECT_EQ(runtime_info().cpu_native_bf16, flag);
}

// The build-settings line as LibTorch's at::show_config() prints it: PyTorch's wheels (MKL inside
// libtorch_cpu.so, nothing in /proc/self/maps) and Debian's (generic: the system's BLAS alternative).
TEST(Runtime, BlasNamedByTheBuildConfig) {
  EXPECT_EQ(blas_from_build_config("PyTorch built with:\n  - Build settings: BLAS_INFO=mkl, BUILD_TYPE=Release, "
                                   "USE_CUDA=ON,\n"),
            "mkl (linked into LibTorch, BLAS_INFO=mkl)");
  EXPECT_EQ(blas_from_build_config("  - Build settings: BUILD_TYPE=Release, BLAS_INFO=open\n"),
            "open (linked into LibTorch, BLAS_INFO=open)");
  EXPECT_EQ(blas_from_build_config("  - Build settings: BLAS_INFO=generic, BUILD_TYPE=RelWithDebInfo,"), "");
  EXPECT_EQ(blas_from_build_config("PyTorch built with:\n  - GCC 12.2\n"), "");
  EXPECT_EQ(blas_from_build_config(""), "");
}

// With a LibTorch that uses the system's BLAS (Debian's, BLAS_INFO=generic) the backend must be OpenBLAS:
// scripts/setup.sh selects it; the reference BLAS Debian may fall back to is ~30x slower on matmuls.
TEST(Runtime, SystemBlasIsOpenBlas) {
  const auto info = runtime_info();
  if (!blas_from_build_config(at::show_config()).empty()) GTEST_SKIP() << "LibTorch links its own BLAS: " << info.blas_backend;
  EXPECT_NE(info.blas_backend.find("openblas"), std::string::npos) << info.blas_backend;
}

// In a LibTorch program too (PyTorch's wheels carry their own copy), the C++ runtime runtime_info()
// reports is the shared libstdc++ (cmake/ClipgenDeps.cmake links it first).
TEST(Runtime, CxxRuntimeIsTheSharedLibstdcxx) {
  const auto r = runtime_info().cxx_runtime;
  EXPECT_NE(r.find("libstdc++.so"), std::string::npos) << r;
  EXPECT_EQ(r.find("WARNING"), std::string::npos) << r;
}
