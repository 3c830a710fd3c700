// clipgen command-line entry point (temporary minimal version: version, fixture check).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <iostream>

#include "core/error.h"
#include "core/version.h"
#include "models/runtime.h"
#include "parity/fixture.h"

int main(int argc, char** argv) {
  CLI::App app{"clipgen — YAML shot descriptions to finished video clips"};
  app.require_subcommand(1);
  auto* version = app.add_subcommand("version", "Print versions and runtime facts");
  auto* fixture = app.add_subcommand("fixture", "Reference fixture tools");
  auto* check = fixture->add_subcommand("check", "Run fixture folders and compare with the reference outputs");
  std::vector<std::string> dirs;
  check->add_option("DIR", dirs, "fixture folders (searched recursively for fixture.json)")->required();
  fixture->require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    clipgen::configure_threads(0);
    if (*version) {
      auto r = clipgen::runtime_info();
      fmt::print("clipgen {}\nLibTorch {} ({})\nBLAS {}\nintra-op threads {}\n", clipgen::version_string(), r.torch_version,
                 r.cuda_build ? "CUDA" : "CPU", r.blas_backend, r.intra_op_threads);
      return 0;
    }
    if (*check) {
      bool ok = true;
      for (const auto& d : dirs) {
        auto res = clipgen::parity::check_tree(d);
        std::cout << clipgen::parity::format_results(res);
        for (const auto& r : res) ok = ok && r.pass();
      }
      return ok ? 0 : 1;
    }
  } catch (const clipgen::Error& e) {
    fmt::print(stderr, "clipgen: error: {}\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    fmt::print(stderr, "clipgen: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
