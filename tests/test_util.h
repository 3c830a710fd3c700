// Helpers shared by the test executables.
#pragma once
#include <filesystem>
#include <string>

namespace clipgen::test {

// tests/data, where the reference fixtures live (a copy of shared/fixtures, see tests/data/README.md).
inline std::filesystem::path data_dir() { return CLIPGEN_TEST_DATA; }
inline std::filesystem::path fixture_dir(const std::string& rel) { return data_dir() / "fixtures" / rel; }
inline std::filesystem::path manifest_dir(const std::string& rel) { return data_dir() / "manifests" / rel; }

// A fresh, empty scratch folder under the build tree, unique per test name.
inline std::filesystem::path scratch_dir(const std::string& name) {
  auto p = std::filesystem::path(CLIPGEN_BINARY_DIR) / "test-scratch" / name;
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

}  // namespace clipgen::test
