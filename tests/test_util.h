// Helpers shared by the test executables.
#pragma once
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

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

// The message of the E that `f` throws, or "(no error)" when it throws none (any other exception
// propagates and fails the test).
template <class E, class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}

// Writes `text` to `p`, creating its folder.
inline void write_file(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// Runs a shell command, returns its stdout; throws when it exits non-zero.
inline std::string run_command(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("popen failed: " + cmd);
  std::array<char, 65536> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int rc = ::pclose(p);
  if (rc != 0) throw std::runtime_error("command failed (" + std::to_string(rc) + "): " + cmd);
  return out;
}

inline std::string quote(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

// ffprobe -show_streams -show_format (and -count_frames: streams get nb_read_frames) as JSON.
inline nlohmann::json ffprobe(const std::filesystem::path& file, bool count_frames = true) {
  std::string cmd = "ffprobe -v error " + std::string(count_frames ? "-count_frames " : "") +
                    "-show_streams -show_format -of json " + quote(file);
  return nlohmann::json::parse(run_command(cmd));
}

}  // namespace clipgen::test
