// Text for `clipgen presets`, `clipgen presets NAME` and `clipgen validate`.
#include <gtest/gtest.h>

#include <sstream>

#include "configs/report.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace clipgen::configs;

namespace {
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST(Report, PresetTableHasOneRowPerPreset) {
  const auto reg = PresetRegistry::load();
  const std::string t = format_preset_table(reg);
  std::istringstream in(t);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), reg.names().size() + 1);
  EXPECT_EQ(lines[0].rfind("NAME", 0), 0u);
  for (size_t i = 0; i < reg.names().size(); ++i) {
    EXPECT_EQ(lines[i + 1].rfind(reg.names()[i] + " ", 0), 0u) << lines[i + 1];
    EXPECT_NE(lines[i + 1].back(), ' ');
  }
  EXPECT_TRUE(contains(t, "1080x1920"));
  EXPECT_TRUE(contains(t, "2048x858"));
  EXPECT_TRUE(contains(t, "prores_ks hq"));
  EXPECT_TRUE(contains(t, "bitrate 8 Mb/s"));
}

TEST(Report, PresetDetailShowsZonesInPixelsAndPercent) {
  const auto reg = PresetRegistry::load();
  const std::string d = format_preset_detail(reg.get("instagram-reels"));
  // 14% of 1920 = 268.8 -> 269 px; 35% of 1920 = 672 px; 6% of 1080 = 64.8 -> 65 px
  EXPECT_TRUE(contains(d, "platform UI:  top 269 px (14%), bottom 672 px (35%), left 65 px (6%), right 65 px (6%)"))
      << d;
  // action safe 3.5%: 67 px of 1920, 38 px of 1080
  EXPECT_TRUE(contains(d, "action safe:  top 67 px (3.5%), bottom 67 px (3.5%), left 38 px (3.5%), right 38 px (3.5%)"))
      << d;
  EXPECT_TRUE(contains(d, "titles on this platform: inside x 65..1015, y 269..1248 (950x979)")) << d;
  EXPECT_TRUE(contains(d, "source: Meta")) << d;
  EXPECT_TRUE(contains(d, "1080x1920 (9:16) at 30 fps")) << d;
  const std::string scope = format_preset_detail(reg.get("dci-scope-2k"));
  EXPECT_TRUE(contains(scope, "2048x858 (2.39:1) at 24 fps")) << scope;
  EXPECT_TRUE(contains(scope, "platform UI:  none")) << scope;
  EXPECT_TRUE(contains(scope, "source: DCI Digital Cinema System Specification")) << scope;
}

TEST(Report, ShotIsFullyResolved) {
  const auto list = load_shots({fs::path(CLIPGEN_SOURCE_DIR) / "examples/shotlist.yaml"},
                               LoadOptions{clipgen::test::scratch_dir("report_shot")});
  const std::string s = format_shot(list.shots[1]);
  EXPECT_TRUE(contains(s, "id: sea-day-to-night\n")) << s;
  EXPECT_TRUE(contains(s, "preset: hd (1920x1080, 30 fps, libx264, mp4)\n")) << s;
  EXPECT_TRUE(contains(s, "frames: 120  # 4s\n")) << s;
  EXPECT_TRUE(
      contains(s, "seed: " + std::to_string(default_seed("sea-day-to-night")) + "  # derived from the id\n"))
      << s;
  EXPECT_TRUE(contains(s, "  - at: 2.5s  # frame 75\n")) << s;
  EXPECT_TRUE(contains(s, "  steps: 30\n")) << s;
  EXPECT_TRUE(contains(s, "  keyframe: builtin  # " + builtin_keyframe_model().string() + "\n")) << s;
  EXPECT_TRUE(contains(s, "output: " + list.shots[1].output.string() + "\n")) << s;
  EXPECT_TRUE(contains(s, "negative_prompt: \"blurry, low quality, text, watermark\"\n")) << s;
}

TEST(Report, RateText) {
  EXPECT_EQ(format_rate({30, 1}), "30");
  EXPECT_EQ(format_rate({30000, 1001}), "30000/1001 (29.97)");
  EXPECT_EQ(format_rate({24000, 1001}), "24000/1001 (23.976)");
}
