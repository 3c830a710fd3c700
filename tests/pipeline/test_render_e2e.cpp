// End to end: shot YAML → configs::load_shots → render_shots (procedural renderer, real libavfilter
// post and libav encoder) → checked with ffprobe. Small raster and few frames to stay fast.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>

#include "configs/shot.h"
#include "core/fs.h"
#include "pipeline/render.h"
#include "tests/test_util.h"

using namespace clipgen;
namespace fs = std::filesystem;

namespace {

std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  pclose(p);
  return out;
}

// A small user preset (same fields as configs/presets/hd.yaml, 160x96 at 24 fps, fast x264).
void write_tiny_preset(const fs::path& dir) {
  fs::create_directories(dir);
  std::ofstream(dir / "tiny.yaml") << R"(name: tiny
description: test preset 160x96
raster:
  width: 160
  height: 96
  fps: 24
  source: "test"
video:
  codec: libx264
  profile: high
  pix_fmt: yuv420p
  rate_control: crf
  crf: 23
  gop: 12
  closed_gop: true
  b_frames: 2
  encoder_preset: ultrafast
  color: bt709
  range: tv
  source: "test"
audio:
  codec: aac
  sample_rate: 48000
  channels: 2
  bitrate: 128000
  source: "test"
container: mp4
faststart: true
max_duration:
  seconds: 0
  source: "No limit"
safe_zones:
  action_safe: {top: 0.035, bottom: 0.035, left: 0.035, right: 0.035, source: "test"}
  title_safe: {top: 0.05, bottom: 0.05, left: 0.05, right: 0.05, source: "test"}
)";
}

}  // namespace

TEST(RenderEndToEnd, ProceduralShotsThroughPostAndEncoder) {
  const auto dir = clipgen::test::scratch_dir("render_e2e");
  write_tiny_preset(dir / "presets");
  std::ofstream(dir / "shots.yaml") << R"(version: 1
defaults:
  preset: tiny
  size: {width: 128, height: 72}
  motion: {generation_fps: 8, num_frames: 6, decode_chunk: 4, transition_frames: 4}
shots:
  - id: valley
    duration: 1.5
    seed: 42
    keyframes:
      - at: 0
        prompt: "a green valley at noon"
      - at: 0.75s
        prompt: "the same valley at night under the moon"
  - id: desert
    frames: 20
    seed: 7
    prompt: "desert dunes at sunset"
    post: {retime: dup}
)";
  configs::LoadOptions lo;
  lo.out_root = dir / "out";
  lo.preset_dirs = {dir / "presets"};
  auto list = configs::load_shots({dir / "shots.yaml"}, lo);
  ASSERT_EQ(list.shots.size(), 2u);

  pipeline::RenderOptions opt;
  opt.out_root = lo.out_root;
  opt.devices = {"cpu", "cpu"};
  pipeline::RunReport report;
  pipeline::render_shots(list, opt, report);

  for (size_t i = 0; i < list.shots.size(); ++i) {
    const auto& shot = list.shots[i];
    SCOPED_TRACE(shot.id);
    EXPECT_EQ(report.shots[i].status, pipeline::ShotStatus::Done);
    ASSERT_TRUE(fs::exists(shot.output)) << shot.output;
    const auto probe = run_capture(
        "ffprobe -v error -select_streams v:0 -count_frames -show_entries "
        "stream=codec_name,width,height,pix_fmt,r_frame_rate,nb_read_frames -of default=nw=1 '" +
        shot.output.string() + "'");
    EXPECT_NE(probe.find("codec_name=h264"), std::string::npos) << probe;
    EXPECT_NE(probe.find("width=160"), std::string::npos) << probe;
    EXPECT_NE(probe.find("height=96"), std::string::npos) << probe;
    EXPECT_NE(probe.find("r_frame_rate=24/1"), std::string::npos) << probe;
    EXPECT_NE(probe.find("nb_read_frames=" + std::to_string(shot.frames) + "\n"), std::string::npos)
        << probe << " expected " << shot.frames << " frames";
    // The resolved shot is in the container metadata.
    const auto tags = run_capture("ffprobe -v error -show_entries format_tags -of default=nw=1 '" +
                                  shot.output.string() + "'");
    EXPECT_NE(tags.find(shot.id), std::string::npos) << tags;
  }
  EXPECT_EQ(list.shots[0].frames, 36);  // 1.5 s at 24 fps
  // No temporary files left next to the outputs.
  for (const auto& e : fs::recursive_directory_iterator(lo.out_root))
    EXPECT_EQ(e.path().filename().string().find(".partial"), std::string::npos) << e.path();

  // The same shots rendered again with --force decode to identical frames (deterministic in the seed).
  const auto md5 = [&] {
    return run_capture("ffmpeg -v error -i '" + list.shots[0].output.string() + "' -map 0:v -f md5 -");
  };
  const auto first = md5();
  EXPECT_NE(first.find("MD5="), std::string::npos) << first;
  opt.force = true;
  pipeline::render_shots(list, opt, report);
  EXPECT_EQ(md5(), first);
}
