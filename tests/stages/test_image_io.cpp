// stages::read_image / write_png: images made by the ffmpeg CLI decode to the colours it was told to
// draw; PNGs we write are lossless, read back by ffmpeg, and written atomically.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/fs.h"
#include "tests/stages/media_test_util.h"
#include "stages/image_io.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace clipgen;

TEST(ImageIO, ReadsPngAndJpegMadeByFfmpeg) {
  auto dir = clipgen::test::scratch_dir("image_read");
  // Drawn directly in RGB (format=rgb24 on the source), so the PNG holds exactly 0x3366CC.
  clipgen::test::run_command("ffmpeg -v error -y -f lavfi -i color=c=0x3366CC:s=48x32,format=rgb24 -frames:v 1 " +
                             clipgen::test::quote(dir / "c.png"));
  auto png = stages::read_image(dir / "c.png");
  ASSERT_EQ(png.width, 48);
  ASSERT_EQ(png.height, 32);
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 48; ++x) {
      const auto* p = png.pixel(x, y);
      ASSERT_EQ(p[0], 0x33);
      ASSERT_EQ(p[1], 0x66);
      ASSERT_EQ(p[2], 0xCC);
    }
  clipgen::test::run_command("ffmpeg -v error -y -f lavfi -i color=c=0x3366CC:s=48x32 -frames:v 1 -q:v 1 " +
                             clipgen::test::quote(dir / "c.jpg"));
  auto jpg = stages::read_image(dir / "c.jpg");
  ASSERT_EQ(jpg.width, 48);
  // Against ffmpeg's own decode of the same JPEG (full-range BT.601, as JPEG is).
  auto raw = clipgen::test::run_command("ffmpeg -v error -i " + clipgen::test::quote(dir / "c.jpg") +
                                        " -f rawvideo -pix_fmt rgb24 -");
  ASSERT_EQ(raw.size(), jpg.rgb.size());
  for (size_t i = 0; i < raw.size(); ++i) ASSERT_NEAR(static_cast<uint8_t>(raw[i]), jpg.rgb[i], 2) << i;
  const auto* p = jpg.pixel(24, 16);
  EXPECT_NEAR(p[0], 0x33, 4);
  EXPECT_NEAR(p[1], 0x66, 4);
  EXPECT_NEAR(p[2], 0xCC, 4);
}

TEST(ImageIO, WritePngIsLosslessAndAtomic) {
  auto dir = clipgen::test::scratch_dir("image_write");
  auto f = clipgen::test::synthetic_frame(67, 41, 3);  // odd sizes: no padding assumptions
  auto out = dir / "frame.png";
  stages::write_png(f, out);
  EXPECT_FALSE(fs::exists(temp_path_for(out)));
  // Read back by us and by ffmpeg.
  auto back = stages::read_image(out);
  EXPECT_EQ(back.width, 67);
  EXPECT_EQ(back.rgb, f.rgb);
  auto raw = clipgen::test::run_command("ffmpeg -v error -i " + clipgen::test::quote(out) +
                                        " -f rawvideo -pix_fmt rgb24 -");
  EXPECT_EQ(std::vector<uint8_t>(raw.begin(), raw.end()), f.rgb);
  auto probe = clipgen::test::ffprobe(out, false);
  EXPECT_EQ(probe["streams"][0]["codec_name"], "png");
  EXPECT_EQ(probe["streams"][0]["pix_fmt"], "rgb24");
}

TEST(ImageIO, ErrorsNameTheFile) {
  auto dir = clipgen::test::scratch_dir("image_bad");
  try {
    stages::read_image(dir / "none.png");
    FAIL();
  } catch (const EncodeError& e) {
    EXPECT_NE(std::string(e.what()).find("none.png"), std::string::npos);
  }
  atomic_write_file(dir / "junk.png", "not a png");
  EXPECT_THROW(stages::read_image(dir / "junk.png"), EncodeError);
  EXPECT_THROW(stages::write_png(stages::Frame(), dir / "empty.png"), EncodeError);
  EXPECT_FALSE(fs::exists(dir / "empty.png"));
}
