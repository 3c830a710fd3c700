#include "models/runtime.h"

#include <sched.h>

#include <fstream>
#include <sstream>

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "core/error.h"
#include "core/fs.h"

namespace clipgen {

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return 1;
}

int configure_threads(int requested) {
  int n = requested > 0 ? requested : usable_cores();
  at::set_num_threads(n);
  return at::get_num_threads();
}

static std::string detect_blas() {
  // The BLAS library actually mapped into this process (Debian selects it with update-alternatives).
  std::ifstream maps("/proc/self/maps");
  std::string line, found;
  while (std::getline(maps, line)) {
    auto pos = line.find('/');
    if (pos == std::string::npos) continue;
    std::string path = line.substr(pos);
    if (path.find("openblas") != std::string::npos) {
      if (path.find("openblas-openmp") != std::string::npos) return "openblas-openmp (" + path + ")";
      if (path.find("openblas-pthread") != std::string::npos) return "openblas-pthread (" + path + ")";
      found = "openblas (" + path + ")";
    } else if (found.empty() && path.find("libmkl") != std::string::npos) {
      found = "mkl (" + path + ")";
    } else if (found.empty() && path.find("/blas/libblas") != std::string::npos) {
      found = "reference BLAS (" + path + ") — slow; install libopenblas0-openmp";
    }
  }
  return found;
}

std::string blas_from_build_config(const std::string& cfg) {
  const std::string key = "BLAS_INFO=";
  const auto pos = cfg.find(key);
  if (pos == std::string::npos) return "";
  const auto begin = pos + key.size();
  const auto end = cfg.find_first_of(", \n", begin);
  const std::string name = cfg.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
  if (name.empty() || name == "generic") return "";
  return name + " (linked into LibTorch, BLAS_INFO=" + name + ")";
}

RuntimeInfo runtime_info() {
  RuntimeInfo r;
  r.torch_version = TORCH_VERSION;
  const std::string cfg = at::show_config();
  r.cuda_build = torch::cuda::is_available() || cfg.find("USE_CUDA=ON") != std::string::npos ||
                 cfg.find("USE_CUDA=1") != std::string::npos;
  r.blas_backend = detect_blas();
  if (r.blas_backend.empty()) r.blas_backend = blas_from_build_config(cfg);
  if (r.blas_backend.empty()) r.blas_backend = "unknown (no BLAS library mapped, none named by the LibTorch build)";
  r.intra_op_threads = at::get_num_threads();
  r.inter_op_threads = at::get_num_interop_threads();
  r.devices.push_back("cpu");
  for (size_t i = 0; i < torch::cuda::device_count(); ++i) r.devices.push_back("cuda:" + std::to_string(i));
  r.cpu_native_bf16 = cpu_has_native_bf16();
  r.cxx_runtime = cxx_runtime();
  return r;
}

bool cpu_has_native_bf16() {
  static const bool has = [] {
    std::ifstream f("/proc/cpuinfo");
    for (std::string line; std::getline(f, line);) {
      if (line.rfind("flags", 0) != 0) continue;
      std::istringstream words(line);
      for (std::string w; words >> w;)
        if (w == "avx512_bf16" || w == "amx_bf16") return true;
      return false;  // the first CPU's flags speak for all
    }
    return false;
  }();
  return has;
}

c10::ScalarType resolve_precision(const std::string& precision, const c10::Device& device) {
  if (precision == "auto" || precision.empty()) return device.is_cuda() ? c10::kHalf : c10::kFloat;
  if (precision == "fp32") return c10::kFloat;
  if (precision == "bf16") return c10::kBFloat16;
  if (precision == "fp16") {
    if (!device.is_cuda())
      throw UnsupportedError("precision fp16 needs a CUDA device (this shot runs on " + device.str() +
                             "); on the CPU use bf16" + (cpu_has_native_bf16() ? "" : " (emulated on this CPU)") +
                             " or fp32");
    return c10::kHalf;
  }
  throw UsageError("precision: expected auto, fp32, bf16 or fp16, got '" + precision + "'");
}

c10::ScalarType vae_dtype_for(c10::ScalarType dtype, bool force_upcast) {
  return dtype == c10::kHalf && force_upcast ? c10::kFloat : dtype;
}

std::string precision_name(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kFloat: return "fp32";
    case c10::kBFloat16: return "bf16";
    case c10::kHalf: return "fp16";
    default: return c10::toString(dtype);
  }
}

std::vector<std::string> parse_device_list(const std::string& spec) {
  std::vector<std::string> out;
  if (spec.empty() || spec == "auto") {
    auto n = torch::cuda::device_count();
    for (size_t i = 0; i < n; ++i) out.push_back("cuda:" + std::to_string(i));
    if (out.empty()) out.push_back("cpu");
    return out;
  }
  std::stringstream ss(spec);
  std::string item;
  const auto n = static_cast<long>(torch::cuda::device_count());
  while (std::getline(ss, item, ',')) {
    if (item == "cpu") {
      out.push_back(item);
    } else if (item == "cuda") {
      if (n == 0) throw UsageError("--devices: 'cuda' requested but no CUDA device is available");
      for (long i = 0; i < n; ++i) out.push_back("cuda:" + std::to_string(i));
    } else if (item.rfind("cuda:", 0) == 0) {
      long idx = -1;
      try {
        idx = std::stol(item.substr(5));
      } catch (...) {
      }
      if (idx < 0) throw UsageError("--devices: bad device '" + item + "' (expected cpu, cuda or cuda:N)");
      if (idx >= n) throw UsageError("--devices: '" + item + "' is not available (" + std::to_string(n) + " CUDA devices)");
      out.push_back(item);
    } else {
      throw UsageError("--devices: bad device '" + item + "' (expected cpu, cuda or cuda:N)");
    }
  }
  if (out.empty()) throw UsageError("--devices: empty device list");
  return out;
}

}  // namespace clipgen
