// The built `clipgen` binary: exit codes (0 success, 1 runtime failure, 2 usage/config error),
// validate's error messages, run/dry-run/resume, --json-report, environment variables.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>

#include "core/fs.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace {

struct Result {
  int code = -1;
  std::string out;  // stdout and stderr together
};

Result run_clipgen(const std::string& args, const std::string& env = "") {
  const fs::path bin = fs::path(CLIPGEN_BINARY_DIR) / "cli" / "clipgen";
  const std::string cmd = env + (env.empty() ? "" : " ") + "NO_COLOR=1 '" + bin.string() + "' " + args + " 2>&1";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

// A small preset so that rendering stays fast (same fields as configs/presets/hd.yaml).
void write_preset(const fs::path& dir) {
  fs::create_directories(dir);
  std::ofstream(dir / "tiny.yaml") << R"(name: tiny
description: test preset 128x72
raster: {width: 128, height: 72, fps: 12, source: "test"}
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
}

const char* kShot = R"(version: 1
id: cli-shot
preset: tiny
duration: 1
seed: 3
prompt: "rolling hills under a pale sky"
size: {width: 64, height: 64}
motion: {generation_fps: 6, decode_chunk: 3}
)";

}  // namespace

TEST(Cli, VersionAndUsage) {
  auto r = run_clipgen("version");
  EXPECT_EQ(r.code, 0) << r.out;
  for (const char* s : {"clipgen ", "LibTorch ", "BLAS ", "intra-op threads ", "oneTBB ", "libavcodec ", "devices cpu"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  EXPECT_EQ(run_clipgen("").code, 2);
  EXPECT_EQ(run_clipgen("render").code, 2);
  EXPECT_EQ(run_clipgen("run").code, 2);  // FILE is required
  EXPECT_EQ(run_clipgen("run --no-such-flag x.yaml").code, 2);
  auto help = run_clipgen("run --help");
  EXPECT_EQ(help.code, 0);
  for (const char* s : {"--out", "CLIPGEN_OUT", "renders", "--devices", "CLIPGEN_DEVICES", "--json-report", "--force",
                        "--dry-run", "--preset", "CLIPGEN_PRESET"})
    EXPECT_NE(help.out.find(s), std::string::npos) << s << "\n" << help.out;
}

TEST(Cli, ValidateReportsErrorsWithLocationAndExit2) {
  const auto dir = clipgen::test::scratch_dir("cli_validate");
  write_preset(dir / "presets");
  std::ofstream(dir / "bad.yaml") << "version: 1\nid: bad\npreset: tiny\nduration: 1\nprompt: x\nsampler:\n  stepz: 3\n";
  auto r = run_clipgen("validate " + q(dir / "bad.yaml") + " --preset-dir " + q(dir / "presets"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("bad.yaml:7:3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("did you mean 'steps'"), std::string::npos) << r.out;

  std::ofstream(dir / "good.yaml") << kShot;
  r = run_clipgen("validate " + q(dir / "good.yaml") + " --preset-dir " + q(dir / "presets"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("cli-shot"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 shot(s) valid"), std::string::npos) << r.out;

  r = run_clipgen("presets");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("vertical-short"), std::string::npos);
  EXPECT_EQ(run_clipgen("presets no-such-preset").code, 2);
}

TEST(Cli, RunDryRunResumeAndReport) {
  const auto dir = clipgen::test::scratch_dir("cli_run");
  write_preset(dir / "presets");
  std::ofstream(dir / "shot.yaml") << kShot;
  const auto out = dir / "out";
  const std::string common = q(dir / "shot.yaml") + " --preset-dir " + q(dir / "presets") + " --threads 1";

  auto r = run_clipgen("run " + common + " --dry-run", "CLIPGEN_OUT=" + q(out));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("cli-shot: 12 frames"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(out / "cli-shot.mp4"));

  r = run_clipgen("run " + common + " -q --json-report " + q(dir / "report.json"), "CLIPGEN_OUT=" + q(out));
  EXPECT_EQ(r.code, 0) << r.out;
  ASSERT_TRUE(fs::exists(out / "cli-shot.mp4")) << r.out;
  auto report = clipgen::read_file(dir / "report.json");
  EXPECT_NE(report.find("\"status\": \"done\""), std::string::npos) << report;
  EXPECT_NE(report.find("\"stage_seconds\""), std::string::npos) << report;
  EXPECT_NE(report.find("\"seed\": 3"), std::string::npos) << report;

  // A rerun skips the finished shot; --force renders it again.
  r = run_clipgen("run " + common + " --out " + q(out) + " --json-report " + q(dir / "report2.json"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(clipgen::read_file(dir / "report2.json").find("\"status\": \"skipped\""), std::string::npos);
  r = run_clipgen("run " + common + " --out " + q(out) + " --force --json-report " + q(dir / "report3.json"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(clipgen::read_file(dir / "report3.json").find("\"status\": \"done\""), std::string::npos);
}

TEST(Cli, RuntimeFailuresExit1AndSayWhatRemains) {
  const auto dir = clipgen::test::scratch_dir("cli_fail");
  write_preset(dir / "presets");
  // A folder with a model_index.json that names no usable pipeline: the shot file is valid, loading fails at run time.
  fs::create_directories(dir / "model");
  std::ofstream(dir / "model" / "model_index.json") << "{}";
  std::ofstream(dir / "model.yaml") << std::string(kShot) + "models: {keyframe: model}\n";
  auto r = run_clipgen("run " + q(dir / "model.yaml") + " --preset-dir " + q(dir / "presets") + " --out " + q(dir / "out"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("cannot make keyframes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stage text"), std::string::npos) << r.out;

  // The output name is taken by a folder: the encoder cannot rename its temporary file onto it.
  std::ofstream(dir / "shot.yaml") << kShot;
  fs::create_directories(dir / "out" / "cli-shot.mp4" / "occupied");
  r = run_clipgen("run " + q(dir / "shot.yaml") + " --preset-dir " + q(dir / "presets") + " --out " + q(dir / "out") +
              " --json-report " + q(dir / "report.json"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("shot 'cli-shot', stage encode"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("what remains"), std::string::npos) << r.out;
  EXPECT_NE(clipgen::read_file(dir / "report.json").find("\"status\": \"failed\""), std::string::npos);
  for (const auto& e : fs::directory_iterator(dir / "out"))
    EXPECT_EQ(e.path().filename().string().find(".partial"), std::string::npos) << e.path();
}
