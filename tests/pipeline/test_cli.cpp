// The built `clipgen` binary: exit codes (0 success, 1 runtime failure, 2 usage/config error),
// validate's error messages, run/dry-run/resume, --json-report, environment variables.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "tests/pipeline/cli_test_util.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
namespace test = clipgen::test;

namespace {

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

const char* kShot = R"(version: 1
id: cli-shot
preset: tiny
duration: 1
seed: 3
prompt: "a green kite over sand on a clear day"
size: {width: 64, height: 64}
motion: {generation_fps: 6, decode_chunk: 3}
)";

}  // namespace

TEST(Cli, VersionAndUsage) {
  auto r = test::run_clipgen("version");
  EXPECT_EQ(r.code, 0) << r.out;
  for (const char* s : {"clipgen ", "LibTorch ", "BLAS ", "intra-op threads ", "oneTBB ", "libavcodec ", "devices cpu",
                        "C++ runtime /"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  EXPECT_EQ(r.out.find("WARNING"), std::string::npos) << r.out;  // clipgen's std::filesystem is libstdc++'s
  EXPECT_EQ(test::run_clipgen("").code, 2);
  EXPECT_EQ(test::run_clipgen("render").code, 2);
  EXPECT_EQ(test::run_clipgen("run").code, 2);  // FILE is required
  EXPECT_EQ(test::run_clipgen("run --no-such-flag x.yaml").code, 2);
  auto help = test::run_clipgen("run --help");
  EXPECT_EQ(help.code, 0);
  for (const char* s : {"--out", "CLIPGEN_OUT", "renders", "--devices", "CLIPGEN_DEVICES", "--json-report", "--force",
                        "--dry-run", "--preset", "CLIPGEN_PRESET"})
    EXPECT_NE(help.out.find(s), std::string::npos) << s << "\n" << help.out;
}

TEST(Cli, ValidateReportsErrorsWithLocationAndExit2) {
  const auto dir = clipgen::test::scratch_dir("cli_validate");
  test::write_test_preset(dir / "presets", "tiny", 128, 72);
  std::ofstream(dir / "bad.yaml") << "version: 1\nid: bad\npreset: tiny\nduration: 1\nprompt: x\nsampler:\n  stepz: 3\n";
  auto r = test::run_clipgen("validate " + q(dir / "bad.yaml") + " --preset-dir " + q(dir / "presets"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("bad.yaml:7:3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("did you mean 'steps'"), std::string::npos) << r.out;

  std::ofstream(dir / "good.yaml") << kShot;
  r = test::run_clipgen("validate " + q(dir / "good.yaml") + " --preset-dir " + q(dir / "presets"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("cli-shot"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 shot(s) valid"), std::string::npos) << r.out;

  r = test::run_clipgen("presets");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("vertical-short"), std::string::npos);
  EXPECT_EQ(test::run_clipgen("presets no-such-preset").code, 2);
}

TEST(Cli, RunDryRunResumeAndReport) {
  const auto dir = clipgen::test::scratch_dir("cli_run");
  test::write_test_preset(dir / "presets", "tiny", 128, 72);
  std::ofstream(dir / "shot.yaml") << kShot;
  const auto out = dir / "out";
  const std::string common = q(dir / "shot.yaml") + " --preset-dir " + q(dir / "presets") + " --threads 1";

  auto r = test::run_clipgen("run " + common + " --dry-run", "CLIPGEN_OUT=" + q(out));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("cli-shot: 12 frames"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(out / "cli-shot.mp4"));

  r = test::run_clipgen("run " + common + " -q --json-report " + q(dir / "report.json"), "CLIPGEN_OUT=" + q(out));
  EXPECT_EQ(r.code, 0) << r.out;
  ASSERT_TRUE(fs::exists(out / "cli-shot.mp4")) << r.out;
  auto report = clipgen::read_file(dir / "report.json");
  EXPECT_NE(report.find("\"status\": \"done\""), std::string::npos) << report;
  EXPECT_NE(report.find("\"stage_seconds\""), std::string::npos) << report;
  EXPECT_NE(report.find("\"seed\": 3"), std::string::npos) << report;
  const auto shot = nlohmann::json::parse(report)["shots"][0];
  EXPECT_EQ(shot["devices"], nlohmann::json::array({"cpu"})) << report;
  EXPECT_EQ(shot["precision"], nlohmann::json({{"cpu", "fp32"}})) << report;  // the built-in diffusion model, auto precision on the CPU

  // A rerun skips the finished shot; --force renders it again.
  r = test::run_clipgen("run " + common + " --out " + q(out) + " --json-report " + q(dir / "report2.json"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(clipgen::read_file(dir / "report2.json").find("\"status\": \"skipped\""), std::string::npos);
  r = test::run_clipgen("run " + common + " --out " + q(out) + " --force --json-report " + q(dir / "report3.json"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(clipgen::read_file(dir / "report3.json").find("\"status\": \"done\""), std::string::npos);
}

TEST(Cli, RuntimeFailuresExit1AndSayWhatRemains) {
  const auto dir = clipgen::test::scratch_dir("cli_fail");
  test::write_test_preset(dir / "presets", "tiny", 128, 72);
  // A folder with a model_index.json that names no usable pipeline: the shot file is valid, loading fails at run time.
  fs::create_directories(dir / "model");
  std::ofstream(dir / "model" / "model_index.json") << "{}";
  std::ofstream(dir / "model.yaml") << std::string(kShot) + "models: {keyframe: model}\n";
  auto r = test::run_shot(dir / "model.yaml", dir / "presets", dir / "out");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("cannot make keyframes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stage text"), std::string::npos) << r.out;

  // The output name is taken by a folder: the encoder cannot rename its temporary file onto it.
  std::ofstream(dir / "shot.yaml") << kShot;
  fs::create_directories(dir / "out" / "cli-shot.mp4" / "occupied");
  r = test::run_shot(dir / "shot.yaml", dir / "presets", dir / "out", " --json-report " + q(dir / "report.json"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("shot 'cli-shot', stage encode"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("what remains"), std::string::npos) << r.out;
  EXPECT_NE(clipgen::read_file(dir / "report.json").find("\"status\": \"failed\""), std::string::npos);
  for (const auto& e : fs::directory_iterator(dir / "out"))
    EXPECT_EQ(e.path().filename().string().find(".partial"), std::string::npos) << e.path();
}
