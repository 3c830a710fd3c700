// The README's first command end to end: `clipgen run examples/quickstart.yaml` renders the built-in
// diffusion model into a 4-second 1080x1920 H.264 short whose pictures show the prompted scene — judged
// from the pixels (scenes::judge) of the keyframe PNG beside the output and of a frame decoded back
// from the encoded file.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "core/fs.h"
#include "scenes/judge.h"
#include "stages/image_io.h"
#include "tests/pipeline/cli_test_util.h"
#include "tests/test_util.h"

using namespace clipgen;
namespace fs = std::filesystem;

TEST(BuiltinRender, QuickstartShowsThePromptedScene) {
  const auto out = test::scratch_dir("builtin_quickstart");
  const fs::path shot = fs::path(CLIPGEN_SOURCE_DIR) / "examples" / "quickstart.yaml";
  const auto r = test::run_clipgen("run " + test::quote(shot) + " --out " + test::quote(out));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.find("warning"), std::string::npos) << "the quickstart prompt is in the vocabulary: " << r.out;
  const fs::path mp4 = out / "quickstart.mp4";
  const auto probe = test::ffprobe(mp4);
  const auto& v = probe["streams"][0];
  EXPECT_EQ(v["codec_name"], "h264");
  EXPECT_EQ(v["width"], 1080);
  EXPECT_EQ(v["height"], 1920);
  EXPECT_EQ(v["nb_read_frames"], "120");
  EXPECT_EQ(v["color_primaries"], "bt709");

  // "a red ball over snow at sunset"
  const auto key = stages::read_image(out / "quickstart.keyframe0.png");
  const auto jk = scenes::judge(key.rgb.data(), key.width, key.height);
  EXPECT_EQ(jk.sky, scenes::Sky::Sunset);
  EXPECT_EQ(jk.ground, scenes::Ground::Snow);
  fmt::print("keyframe {}x{}: sky {}, ground {}, object {}\n", key.width, key.height, scenes::name(jk.sky),
             scenes::name(jk.ground), jk.object ? scenes::name(*jk.object) : "none");

  // Frame 60 of the delivered file, decoded by ffmpeg at the model's raster.
  test::run_command("ffmpeg -loglevel error -y -i " + test::quote(mp4) +
                    " -vf \"select=eq(n\\,60),scale=64:112:flags=area\" -frames:v 1 -f rawvideo -pix_fmt rgb24 " +
                    test::quote(out / "f60.rgb"));
  const std::string raw = read_file(out / "f60.rgb");
  ASSERT_EQ(raw.size(), 64u * 112 * 3);
  const auto jf = scenes::judge(reinterpret_cast<const uint8_t*>(raw.data()), 64, 112);
  EXPECT_EQ(jf.sky, scenes::Sky::Sunset);
  EXPECT_EQ(jf.ground, scenes::Ground::Snow);
}
