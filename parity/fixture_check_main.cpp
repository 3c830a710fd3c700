// clipgen-fixture-check: `clipgen fixture check` without the rest of the CLI. It links only the parity
// library (models, stages) and none of libav's codec libraries at run time, so it can run where
// clipgen's media dependencies are not installed (scripts/device-check.sh on a GPU machine; see
// docs/device.md). Same output and exit codes as `clipgen fixture check`:
//   clipgen-fixture-check [--device cpu|cuda|cuda:N] [--precision fp32|bf16|fp16] [--threads N] DIR...
//                                            0 all pass, 1 a failure, 2 usage
//   clipgen-fixture-check --version                                          LibTorch version, build, devices
#include <fmt/format.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "core/error.h"
#include "models/runtime.h"
#include "parity/fixture.h"

using namespace clipgen;

namespace {

constexpr const char* kUsage =
    "usage: clipgen-fixture-check [--device cpu|cuda|cuda:N] [--precision fp32|bf16|fp16] [--threads N] DIR...\n"
    "       clipgen-fixture-check --version\n";

int print_version() {
  const RuntimeInfo r = runtime_info();
  std::cout << fmt::format("libtorch {} ({}), BLAS {}, intra-op threads {}, devices: {}, C++ runtime {}\n",
                           r.torch_version, r.cuda_build ? "CUDA build" : "CPU build", r.blas_backend,
                           r.intra_op_threads, fmt::join(r.devices, ", "), r.cxx_runtime);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> dirs;
  std::string device = "cpu", precision = "fp32";
  int threads = 0;
  bool version = false;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw UsageError(a + " needs a value");
        return argv[++i];
      };
      if (a == "--device") {
        device = value();
      } else if (a == "--precision") {
        precision = value();
      } else if (a == "--threads") {
        const std::string v = value();
        if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 4)
          throw UsageError("--threads '" + v + "': expected a non-negative number");
        threads = std::stoi(v);
      } else if (a == "--version") {
        version = true;
      } else if (a == "-h" || a == "--help") {
        std::cout << kUsage;
        return 0;
      } else if (!a.empty() && a[0] == '-') {
        throw UsageError("unknown option '" + a + "'");
      } else {
        dirs.push_back(a);
      }
    }
    configure_threads(threads);
    if (version) return print_version();
    if (dirs.empty()) throw UsageError("no fixture folder given");
    const auto dev = parity::parse_fixture_device(device);
    return parity::run_fixture_check(dirs, dev, std::cout, parity::parse_fixture_precision(precision, dev));
  } catch (const UsageError& e) {
    std::cerr << "clipgen-fixture-check: error: " << e.what() << "\n" << kUsage;
    return 2;
  } catch (const Error& e) {
    std::cerr << "clipgen-fixture-check: error: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "clipgen-fixture-check: error: " << e.what() << "\n";
    return 1;
  }
}
