// stages::PostProcessor: output frame counts for every retime mode, and fit-mode geometry
// (crop centred, letterbox bars black, stretch fills the raster).
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "configs/preset.h"
#include "configs/shot.h"
#include "core/error.h"
#include "stages/post.h"

using namespace clipgen;

namespace {

configs::Preset preset(int w, int h, configs::Rational fps) {
  configs::Preset p;
  p.name = "test";
  p.width = w, p.height = h, p.fps = fps;
  return p;
}

stages::Frame flat(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  stages::Frame f(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      auto* p = f.pixel(x, y);
      p[0] = r, p[1] = g, p[2] = b;
    }
  return f;
}

std::vector<stages::Frame> run(stages::PostProcessor& post, const std::vector<stages::Frame>& in) {
  std::vector<stages::Frame> out;
  for (const auto& f : in)
    for (auto& o : post.push(f)) out.push_back(std::move(o));
  for (auto& o : post.flush()) out.push_back(std::move(o));
  return out;
}

// A 160x80 source: blue for x < 30, green for 30 <= x < 130, red for x >= 130.
stages::Frame three_bands() {
  stages::Frame f(160, 80);
  for (int y = 0; y < 80; ++y)
    for (int x = 0; x < 160; ++x) {
      auto* p = f.pixel(x, y);
      p[0] = x >= 130 ? 220 : 0, p[1] = (x >= 30 && x < 130) ? 220 : 0, p[2] = x < 30 ? 220 : 0;
    }
  return f;
}

bool near(const uint8_t* p, int r, int g, int b, int tol) {
  return std::abs(p[0] - r) <= tol && std::abs(p[1] - g) <= tol && std::abs(p[2] - b) <= tol;
}

struct RetimeCase {
  std::string mode;
  int n;
  configs::Rational src, dst;
};

class Retime : public testing::TestWithParam<RetimeCase> {};

TEST_P(Retime, FrameCountIsRoundOfNTimesRateRatio) {
  const auto& c = GetParam();
  configs::Post post;
  post.retime = c.mode;
  post.fit = "stretch";
  stages::PostProcessor pp(48, 32, c.src, preset(32, 32, c.dst), post);
  std::vector<stages::Frame> in;
  auto level = [&](int i) { return 10 + i * 230 / std::max(1, c.n - 1); };  // distinct, increasing
  for (int i = 0; i < c.n; ++i) in.push_back(flat(48, 32, static_cast<uint8_t>(level(i)), 100, 50));
  auto out = run(pp, in);
  const double exact = static_cast<double>(c.n) * c.dst.value() / c.src.value();
  EXPECT_EQ(static_cast<int64_t>(out.size()), static_cast<int64_t>(std::floor(exact + 0.5)))
      << c.mode << " " << c.n << " frames " << c.src.num << "/" << c.src.den << " -> " << c.dst.num << "/" << c.dst.den
      << " (" << pp.filter_description() << ")";
  EXPECT_EQ(pp.frames_out(), static_cast<int64_t>(out.size()));
  // The filters produce at least the count (surplus past the end is cut): nothing is padded.
  EXPECT_LE(pp.adjustment(), 0) << pp.filter_description();
  for (const auto& f : out) {
    ASSERT_EQ(f.width, 32);
    ASSERT_EQ(f.height, 32);
  }
  // Output frames stay in temporal order: the red ramp never goes down.
  for (size_t i = 1; i < out.size(); ++i) EXPECT_GE(out[i].pixel(16, 16)[0] + 2, out[i - 1].pixel(16, 16)[0]);
  std::set<int> in_values;
  for (int i = 0; i < c.n; ++i) in_values.insert(level(i));
  int foreign = 0;  // outputs that are not (within rounding) one of the inputs
  for (const auto& f : out) {
    int r = f.pixel(16, 16)[0];
    bool match = false;
    for (int v : in_values) match |= std::abs(v - r) <= 1;
    foreign += !match;
  }
  if (c.mode == "dup") EXPECT_EQ(foreign, 0) << "dup repeats whole frames";
  if (c.mode == "blend" && c.dst.value() > c.src.value()) EXPECT_GT(foreign, 0) << "blend makes in-between frames";
}

INSTANTIATE_TEST_SUITE_P(
    Modes, Retime,
    testing::Values(RetimeCase{"dup", 14, {7, 1}, {30, 1}}, RetimeCase{"dup", 3, {7, 1}, {30, 1}},
                    RetimeCase{"dup", 25, {7, 1}, {24, 1}}, RetimeCase{"dup", 30, {30, 1}, {24, 1}},
                    RetimeCase{"dup", 10, {8, 1}, {30000, 1001}}, RetimeCase{"blend", 14, {7, 1}, {30, 1}},
                    RetimeCase{"blend", 3, {7, 1}, {30, 1}}, RetimeCase{"blend", 9, {6, 1}, {24, 1}},
                    RetimeCase{"blend", 10, {8, 1}, {30000, 1001}}, RetimeCase{"mci", 8, {7, 1}, {30, 1}},
                    RetimeCase{"mci", 5, {6, 1}, {24, 1}}, RetimeCase{"dup", 5, {30, 1}, {30, 1}}),
    [](const testing::TestParamInfo<RetimeCase>& i) {
      return i.param.mode + "_" + std::to_string(i.param.n) + "_" + std::to_string(i.param.src.num) + "to" +
             std::to_string(i.param.dst.num);
    });

TEST(PostFit, CropKeepsTheCentre) {
  configs::Post post{"crop", "dup"};
  stages::PostProcessor pp(160, 80, {30, 1}, preset(40, 40, {30, 1}), post);
  auto out = run(pp, {three_bands()});
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].width, 40);
  // Scaled to 80x40 (cover), centre 40 columns = source x 40..120: green only.
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 40; ++x) ASSERT_TRUE(near(out[0].pixel(x, y), 0, 220, 0, 6)) << x << "," << y;
}

TEST(PostFit, LetterboxPadsWithBlackBars) {
  configs::Post post{"letterbox", "dup"};
  stages::PostProcessor pp(160, 80, {30, 1}, preset(40, 40, {30, 1}), post);
  auto out = run(pp, {three_bands()});
  ASSERT_EQ(out.size(), 1u);
  // Scaled to 40x20, centred: rows 0..9 and 30..39 are bars.
  for (int x = 0; x < 40; ++x) {
    for (int y : {0, 5, 9, 30, 35, 39}) ASSERT_TRUE(near(out[0].pixel(x, y), 0, 0, 0, 0)) << x << "," << y;
  }
  EXPECT_TRUE(near(out[0].pixel(20, 20), 0, 220, 0, 6));
  EXPECT_TRUE(near(out[0].pixel(1, 20), 0, 0, 220, 20));   // blue band at the left edge
  EXPECT_TRUE(near(out[0].pixel(38, 20), 220, 0, 0, 20));  // red band at the right edge
}

TEST(PostFit, StretchFillsTheRaster) {
  configs::Post post{"stretch", "dup"};
  stages::PostProcessor pp(160, 80, {30, 1}, preset(40, 40, {30, 1}), post);
  auto out = run(pp, {three_bands()});
  ASSERT_EQ(out.size(), 1u);
  for (int y : {0, 20, 39}) {
    EXPECT_TRUE(near(out[0].pixel(2, y), 0, 0, 220, 25)) << y;   // blue: x < 7.5
    EXPECT_TRUE(near(out[0].pixel(20, y), 0, 220, 0, 6)) << y;
    EXPECT_TRUE(near(out[0].pixel(37, y), 220, 0, 0, 25)) << y;  // red: x >= 32.5
  }
}

TEST(PostFit, UnknownModesAreErrors) {
  EXPECT_THROW(stages::PostProcessor(64, 64, {7, 1}, preset(32, 32, {30, 1}), configs::Post{"zoom", "dup"}), EncodeError);
  EXPECT_THROW(stages::PostProcessor(64, 64, {7, 1}, preset(32, 32, {30, 1}), configs::Post{"crop", "warp"}), EncodeError);
  stages::PostProcessor pp(64, 64, {7, 1}, preset(32, 32, {30, 1}), configs::Post{});
  EXPECT_THROW(pp.push(stages::Frame(32, 32)), EncodeError);
}

TEST(PostRetime, FrameCountFormula) {
  EXPECT_EQ(stages::retimed_frame_count(14, {7, 1}, {30, 1}), 60);
  EXPECT_EQ(stages::retimed_frame_count(3, {7, 1}, {30, 1}), 13);   // 12.86
  EXPECT_EQ(stages::retimed_frame_count(1, {8, 1}, {30, 1}), 4);    // 3.75
  EXPECT_EQ(stages::retimed_frame_count(1, {12, 1}, {30, 1}), 3);   // 2.5 rounds up
  EXPECT_EQ(stages::retimed_frame_count(30, {30, 1}, {24, 1}), 24);
}

}  // namespace
