// core/png: the PNG writer's files decode (by ffmpeg, an independent decoder) to exactly the pixels written.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/png.h"
#include "tests/test_util.h"

using namespace clipgen;

TEST(Png, DecodesToThePixelsWritten) {
  const auto dir = test::scratch_dir("png");
  const int w = 37, h = 30;  // odd row length: no alignment to rely on
  std::vector<uint8_t> rgb(static_cast<size_t>(w) * h * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>((i * 7919) >> 3);
  write_png_rgb(dir / "a.png", rgb.data(), w, h);
  const std::string bytes = read_file(dir / "a.png");
  ASSERT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  test::run_command("ffmpeg -loglevel error -y -i " + test::quote(dir / "a.png") + " -f rawvideo -pix_fmt rgb24 " +
                    test::quote(dir / "a.rgb"));
  const std::string raw = read_file(dir / "a.rgb");
  ASSERT_EQ(raw.size(), rgb.size());
  EXPECT_EQ(raw, std::string(rgb.begin(), rgb.end()));
}

TEST(Png, LargeImagesSpanSeveralDeflateBlocks) {
  const auto dir = test::scratch_dir("png_large");
  const int w = 400, h = 200;  // 240,200 bytes of scanlines: four stored blocks
  std::vector<uint8_t> rgb(static_cast<size_t>(w) * h * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i % 251);
  write_png_rgb(dir / "b.png", rgb.data(), w, h);
  test::run_command("ffmpeg -loglevel error -y -i " + test::quote(dir / "b.png") + " -f rawvideo -pix_fmt rgb24 " +
                    test::quote(dir / "b.rgb"));
  EXPECT_EQ(read_file(dir / "b.rgb"), std::string(rgb.begin(), rgb.end()));
  EXPECT_THROW(encode_png_rgb(rgb.data(), 0, 10), clipgen::Error);
}
