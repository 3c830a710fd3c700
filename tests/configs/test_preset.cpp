// Built-in presets (configs/presets/*.yaml): every one loads and has the values docs/presets.md states;
// user preset folders override; bad preset files fail with file:line:col.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "configs/preset.h"
#include "core/error.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace clipgen;
using namespace clipgen::configs;

namespace {

using test::write_file;

// What each preset must say (the figures of issue 2 and docs/presets.md).
struct Expect {
  const char* name;
  int w, h, fps_num, fps_den;
  const char* codec;
  const char* profile;
  const char* pix_fmt;
  const char* container;
  const char* audio_codec;
  int gop, b_frames;
};

const Expect kExpected[] = {
    {"vertical-short", 1080, 1920, 30, 1, "libx264", "high", "yuv420p", "mp4", "aac", 15, 2},
    {"youtube-shorts", 1080, 1920, 30, 1, "libx264", "high", "yuv420p", "mp4", "aac", 15, 2},
    {"tiktok", 1080, 1920, 30, 1, "libx264", "high", "yuv420p", "mp4", "aac", 15, 2},
    {"instagram-reels", 1080, 1920, 30, 1, "libx264", "high", "yuv420p", "mp4", "aac", 15, 2},
    {"square", 1080, 1080, 30, 1, "libx264", "high", "yuv420p", "mp4", "aac", 15, 2},
    {"hd", 1920, 1080, 30, 1, "libx264", "high", "yuv420p", "mp4", "aac", 15, 2},
    {"uhd", 3840, 2160, 30, 1, "libx265", "main", "yuv420p", "mp4", "aac", 15, 2},
    {"dci-flat-2k", 1998, 1080, 24, 1, "prores_ks", "hq", "yuv422p10le", "mov", "pcm_s24le", 1, 0},
    {"dci-scope-2k", 2048, 858, 24, 1, "prores_ks", "hq", "yuv422p10le", "mov", "pcm_s24le", 1, 0},
    {"prores-master", 1920, 1080, 24, 1, "prores_ks", "hq", "yuv422p10le", "mov", "pcm_s24le", 1, 0},
};

}  // namespace

TEST(Presets, BuiltinDirIsTheSourceTreeFolder) {
  EXPECT_EQ(fs::weakly_canonical(builtin_preset_dir()),
            fs::weakly_canonical(fs::path(CLIPGEN_SOURCE_DIR) / "configs/presets"));
}

TEST(Presets, EveryBuiltinPresetLoadsWithItsDocumentedValues) {
  const auto reg = PresetRegistry::load();
  std::vector<std::string> names;
  for (const auto& e : kExpected) names.push_back(e.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(reg.names(), names);
  for (const auto& e : kExpected) {
    SCOPED_TRACE(e.name);
    const Preset& p = reg.get(e.name);
    EXPECT_EQ(p.name, e.name);
    EXPECT_EQ(p.width, e.w);
    EXPECT_EQ(p.height, e.h);
    EXPECT_EQ(p.fps, (Rational{e.fps_num, e.fps_den}));
    EXPECT_EQ(p.video.codec, e.codec);
    EXPECT_EQ(p.video.profile, e.profile);
    EXPECT_EQ(p.video.pix_fmt, e.pix_fmt);
    EXPECT_EQ(p.container, e.container);
    EXPECT_EQ(p.audio.codec, e.audio_codec);
    EXPECT_EQ(p.audio.sample_rate, 48000);
    EXPECT_EQ(p.audio.channels, 2);
    EXPECT_EQ(p.video.gop, e.gop);
    EXPECT_EQ(p.video.b_frames, e.b_frames);
    EXPECT_TRUE(p.video.closed_gop);
    EXPECT_EQ(p.video.color, "bt709");
    EXPECT_EQ(p.video.range, "tv");
    EXPECT_TRUE(p.faststart);
    EXPECT_FALSE(p.description.empty());
    EXPECT_EQ(p.source_file.filename(), std::string(e.name) + ".yaml");
    // Every figure names its source.
    EXPECT_FALSE(p.raster_source.empty());
    EXPECT_FALSE(p.video_source.empty());
    EXPECT_FALSE(p.audio_source.empty());
    EXPECT_FALSE(p.max_duration_source.empty());
    EXPECT_FALSE(p.safe_zones.title_safe_source.empty());
    EXPECT_FALSE(p.safe_zones.source.empty());
    EXPECT_GT(p.safe_zones.title_safe.top, 0);
    if (p.video.rate_control == "crf")
      EXPECT_GT(p.video.crf, 0);
    else
      EXPECT_GT(p.video.bitrate, 0);
  }
}

TEST(Presets, VerticalShortIsTheIssueSpecification) {
  const auto reg = PresetRegistry::load();
  const Preset& p = reg.get("vertical-short");
  // closed GOP of fps/2, 2 B-frames, +faststart, AAC 48 kHz stereo, BT.709 tv range
  EXPECT_EQ(p.video.gop * 2, p.fps.num / p.fps.den);
  EXPECT_EQ(p.audio.codec, "aac");
  EXPECT_EQ(p.max_duration, 180);
  // platform UI: union of the three platforms, per edge
  for (const char* platform : {"youtube-shorts", "tiktok", "instagram-reels"}) {
    const Insets& u = reg.get(platform).safe_zones.platform_ui;
    EXPECT_GE(p.safe_zones.platform_ui.top, u.top) << platform;
    EXPECT_GE(p.safe_zones.platform_ui.bottom, u.bottom) << platform;
    EXPECT_GE(p.safe_zones.platform_ui.left, u.left) << platform;
    EXPECT_GE(p.safe_zones.platform_ui.right, u.right) << platform;
  }
}

TEST(Presets, SafeZonesAndLimits) {
  const auto reg = PresetRegistry::load();
  const auto& reels = reg.get("instagram-reels").safe_zones;
  EXPECT_EQ(reels.platform_ui, (Insets{0.14, 0.35, 0.06, 0.06}));  // issue 2: 14% top, 35% bottom, 6% sides
  EXPECT_NE(reels.platform_ui_source.find("Meta"), std::string::npos);
  for (const char* n : {"hd", "uhd", "square", "prores-master", "vertical-short"}) {
    EXPECT_EQ(reg.get(n).safe_zones.action_safe, (Insets{0.035, 0.035, 0.035, 0.035})) << n;  // SMPTE ST 2046-1
    EXPECT_EQ(reg.get(n).safe_zones.title_safe, (Insets{0.05, 0.05, 0.05, 0.05})) << n;
    EXPECT_NE(reg.get(n).safe_zones.title_safe_source.find("ST 2046-1"), std::string::npos) << n;
  }
  for (const char* n : {"hd", "uhd", "square", "prores-master", "dci-flat-2k", "dci-scope-2k"})
    EXPECT_EQ(reg.get(n).safe_zones.platform_ui, Insets{}) << n;
  for (const char* n : {"dci-flat-2k", "dci-scope-2k"})
    EXPECT_NE(reg.get(n).raster_source.find("DCI"), std::string::npos) << n;
  EXPECT_EQ(reg.get("youtube-shorts").max_duration, 180);
  EXPECT_EQ(reg.get("instagram-reels").max_duration, 180);
  EXPECT_EQ(reg.get("tiktok").max_duration, 600);
  EXPECT_EQ(reg.get("hd").max_duration, 0);
  EXPECT_EQ(reg.get("youtube-shorts").video.rate_control, "bitrate");
  EXPECT_EQ(reg.get("youtube-shorts").video.bitrate, 8000000);
}

TEST(Presets, UnknownNameSuggests) {
  const auto reg = PresetRegistry::load();
  EXPECT_EQ(reg.find("nope"), nullptr);
  EXPECT_EQ(test::error_message<ConfigError>([&] { reg.get("vertical-shrt"); }),
            "unknown preset 'vertical-shrt' (did you mean 'vertical-short'?)");
}

TEST(Presets, UserFolderOverridesAndAdds) {
  const fs::path dir = test::scratch_dir("presets_user");
  write_file(dir / "hd.yaml", R"(name: hd
description: my 720p
raster: {width: 1280, height: 720, fps: 25}
video: {codec: libx264, profile: main, crf: 20}
container: mp4
)");
  write_file(dir / "web-vp9.yaml", R"(name: web-vp9
raster: {width: 1280, height: 720, fps: 30}
video: {codec: libvpx-vp9, profile: "0", rate_control: bitrate, bitrate: 2000000}
audio: {codec: libopus, bitrate: 128000}
container: webm
faststart: false
)");
  write_file(dir / "notes.txt", "not a preset");
  const auto reg = PresetRegistry::load({dir});
  EXPECT_EQ(reg.get("hd").width, 1280);
  EXPECT_EQ(reg.get("hd").fps, (Rational{25, 1}));
  EXPECT_EQ(reg.get("hd").video.profile, "main");
  EXPECT_EQ(reg.get("hd").source_file, dir / "hd.yaml");
  EXPECT_EQ(reg.get("web-vp9").container, "webm");
  EXPECT_EQ(reg.get("web-vp9").audio.codec, "libopus");
  EXPECT_EQ(reg.names().size(), 11u);
  // the built-in ones are untouched
  EXPECT_EQ(reg.get("uhd").width, 3840);
}

TEST(Presets, EnvironmentOverridesTheBuiltinFolder) {
  const fs::path dir = test::scratch_dir("presets_env");
  write_file(dir / "only.yaml",
        "name: only\nraster: {width: 640, height: 360, fps: 24}\nvideo: {codec: libx264}\ncontainer: mkv\n");
  ::setenv("CLIPGEN_PRESET_PATH", dir.c_str(), 1);
  const auto reg = PresetRegistry::load();
  ::unsetenv("CLIPGEN_PRESET_PATH");
  EXPECT_EQ(builtin_preset_dir(), fs::path(CLIPGEN_SOURCE_DIR) / "configs/presets");
  EXPECT_EQ(reg.names(), std::vector<std::string>{"only"});
}

TEST(Presets, BadPresetFilesFailWithPositions) {
  const fs::path dir = test::scratch_dir("presets_bad");
  write_file(dir / "broken.yaml", R"(name: broken
raster: {width: 1280, height: 720, fps: 25}
video:
  codec: libx246
  crf: 99
  gop: 0
container: mp4
safe_zones:
  platform_ui: {top: 0.2}
extra: 1
)");
  write_file(dir / "renamed.yaml",
        "name: other\nraster: {width: 9000, height: 720, fps: 25}\nvideo: {codec: prores_ks}\ncontainer: mp4\n");
  const std::string d = dir.string() + "/";
  EXPECT_EQ(test::error_message<ConfigError>([&] { PresetRegistry::load({dir}); }),
            d +
                "broken.yaml:4:10: video.codec: expected libx264, libx265, prores_ks, libvpx-vp9 or libsvtav1, got "
                "'libx246' (did you mean 'libx264'?)\n" +
                d + "broken.yaml:5:8: video.crf: expected an integer from 0 to 63, got 99\n" + d +
                "broken.yaml:6:8: video.gop: expected an integer from 1 to 1000, got 0\n" + d +
                "broken.yaml:9:16: safe_zones.platform_ui: expected a 'source:' naming where these figures come from, "
                "got none\n" +
                d +
                "broken.yaml:10:1: extra: unknown key, expected one of: name, description, raster, video, audio, "
                "container, faststart, max_duration, safe_zones\n" +
                d + "renamed.yaml:1:7: name: expected 'renamed' (the file name), got 'other'\n" + d +
                "renamed.yaml:2:17: raster.width: expected at most 8192 (Limits::max_dimension), got 9000\n" + d +
                "renamed.yaml:4:12: container: expected a container that can carry prores_ks, got mp4");
  // load_preset_file reads one file with the same checks
  EXPECT_EQ(test::error_message<ConfigError>([&] { load_preset_file(dir / "renamed.yaml"); }).rfind(d + "renamed.yaml:1:7: name: expected", 0),
            0u);
}

TEST(Presets, MissingUserFolderIsAnError) {
  EXPECT_EQ(test::error_message<ConfigError>([] { PresetRegistry::load({"/nonexistent/presets"}); }),
            "/nonexistent/presets: expected a preset folder, got no such folder");
}

TEST(Presets, DocsTableMatchesThePresetFiles) {
  // docs/presets.md's first table: | `name` | W×H | fps | video | pix_fmt | rate | GOP | container | audio | max |
  std::ifstream in(fs::path(CLIPGEN_SOURCE_DIR) / "docs/presets.md");
  const auto reg = PresetRegistry::load();
  std::set<std::string> seen;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("| `", 0) != 0) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line.substr(1));
    for (std::string c; std::getline(ss, c, '|');) cells.push_back(c.substr(1, c.size() - 2));
    if (cells.size() != 10) continue;  // the safe-zone table has other columns
    const std::string name = cells[0].substr(1, cells[0].size() - 2);
    SCOPED_TRACE(name);
    const Preset& p = reg.get(name);
    seen.insert(name);
    EXPECT_EQ(cells[1], std::to_string(p.width) + "\u00d7" + std::to_string(p.height));
    EXPECT_EQ(cells[2], std::to_string(p.fps.num));
    EXPECT_EQ(cells[4], p.video.pix_fmt);
    EXPECT_EQ(cells[7].substr(0, 3), p.container);
    EXPECT_EQ(cells[9] == "none", p.max_duration == 0);
    if (p.max_duration > 0) EXPECT_EQ(cells[9], std::to_string(static_cast<int>(p.max_duration)) + " s");
  }
  EXPECT_EQ(seen.size(), reg.names().size());
}
