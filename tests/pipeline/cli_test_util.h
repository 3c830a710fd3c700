// Shared by the pipeline tests that drive the built `clipgen` binary: running it (exit code and
// output), and a small delivery preset so renders stay fast.
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/test_util.h"

namespace clipgen::test {

struct CliResult {
  int code = -1;
  std::string out;  // stdout and stderr together
};

// Runs `clipgen ARGS` (with NO_COLOR=1 and the optional `env` assignments before it).
inline CliResult run_clipgen(const std::string& args, const std::string& env = "") {
  const std::filesystem::path bin = std::filesystem::path(CLIPGEN_BINARY_DIR) / "cli" / "clipgen";
  const std::string cmd = env + (env.empty() ? "" : " ") + "NO_COLOR=1 '" + bin.string() + "' " + args + " 2>&1";
  CliResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Runs `clipgen run SHOT --preset-dir PRESETS --out OUT` plus `extra` options.
inline CliResult run_shot(const std::filesystem::path& shot, const std::filesystem::path& presets,
                          const std::filesystem::path& out, const std::string& extra = "") {
  return run_clipgen("run " + quote(shot) + " --preset-dir " + quote(presets) + " --out " + quote(out) + extra);
}

// Writes preset `name` (width × height at 12 fps, H.264 ultrafast, mp4; same fields as
// configs/presets/hd.yaml) into `dir`, for --preset-dir. Returns `dir`.
inline std::filesystem::path write_test_preset(const std::filesystem::path& dir, const std::string& name, int width,
                                               int height) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / (name + ".yaml")) << "name: " << name << "\ndescription: test preset " << width << "x" << height
                                        << "\nraster: {width: " << width << ", height: " << height
                                        << R"(, fps: 12, source: "test"}
video: {codec: libx264, profile: high, pix_fmt: yuv420p, rate_control: crf, crf: 23, gop: 6, closed_gop: true,
        b_frames: 2, encoder_preset: ultrafast, color: bt709, range: tv, source: "test"}
audio: {codec: aac, sample_rate: 48000, channels: 2, bitrate: 128000, source: "test"}
container: mp4
faststart: true
max_duration: {seconds: 0, source: "No limit"}
safe_zones:
  action_safe: {top: 0.035, bottom: 0.035, left: 0.035, right: 0.035, source: "test"}
  title_safe: {top: 0.05, bottom: 0.05, left: 0.05, right: 0.05, source: "test"}
)";
  return dir;
}

}  // namespace clipgen::test
