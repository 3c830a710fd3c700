// stages/contact_sheet: the PNG decoded back has the designed size, each thumbnail is the area-downscaled
// keyframe in its cell, labels carry drawn text (and only where text belongs), wrapping/truncation, time
// labels, font lookup errors.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "core/error.h"
#include "stages/contact_sheet.h"
#include "stages/image_io.h"
#include "tests/test_util.h"

using namespace clipgen;
using namespace clipgen::stages;
namespace fs = std::filesystem;

namespace {

// Keyframe i: R = 2x, G = 3y, B = 30 + 40i (so every image and every position is distinguishable).
Frame keyframe(int i, int w = 128, int h = 72) {
  Frame f(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      auto* p = f.pixel(x, y);
      p[0] = static_cast<uint8_t>(2 * x);
      p[1] = static_cast<uint8_t>(3 * y);
      p[2] = static_cast<uint8_t>(30 + 40 * i);
    }
  return f;
}

ContactSheetOptions small_options() {
  ContactSheetOptions o;
  o.columns = 3;
  o.thumb_width = 64;
  o.font_size = 12;
  o.prompt_lines = 2;
  o.padding = 8;
  return o;
}

bool is_background(const Frame& f, int x, int y, const uint8_t bg[3], int tol = 0) {
  const auto* p = f.pixel(x, y);
  return std::abs(p[0] - bg[0]) <= tol && std::abs(p[1] - bg[1]) <= tol && std::abs(p[2] - bg[2]) <= tol;
}

// Pixels in [x0,x1)×[y0,y1) clearly different from the background (text strokes, antialiased edges excluded).
int ink(const Frame& f, int x0, int y0, int x1, int y1, const uint8_t bg[3]) {
  int n = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      const auto* p = f.pixel(x, y);
      if (std::abs(p[0] - bg[0]) + std::abs(p[1] - bg[1]) + std::abs(p[2] - bg[2]) > 90) ++n;
    }
  return n;
}

}  // namespace

TEST(ContactSheet, TimeLabel) {
  EXPECT_EQ(contact_sheet_time_label(2.5, 60), "00:00:02.500 \xC2\xB7 frame 60");
  EXPECT_EQ(contact_sheet_time_label(3725.0421, 89401), "01:02:05.042 \xC2\xB7 frame 89401");
  EXPECT_EQ(contact_sheet_time_label(0, 0), "00:00:00.000 \xC2\xB7 frame 0");
  EXPECT_EQ(contact_sheet_time_label(59.9996, 1), "00:01:00.000 \xC2\xB7 frame 1");  // rounds to ms
}

TEST(ContactSheet, WrapsAndTruncatesPrompts) {
  // Short: one line, whitespace runs collapsed.
  EXPECT_EQ(wrap_label_text("  a red \n  fox ", 200, 12, 3), std::vector<std::string>{"a red fox"});
  EXPECT_TRUE(wrap_label_text("", 200, 12, 3).empty());
  // Long: word-wrapped into at most 3 lines, the last one ends with an ellipsis; no word lost before it.
  const std::string p =
      "a lighthouse on a rocky coast at dusk, dramatic clouds, volumetric light, 35mm photograph, "
      "highly detailed, trending on artstation";
  auto lines = wrap_label_text(p, 100, 12, 3);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2].substr(lines[2].size() - 3), "\xE2\x80\xA6");
  EXPECT_EQ(p.rfind(lines[0] + " " + lines[1], 0), 0u) << lines[0] << " | " << lines[1];
  for (const auto& l : lines) EXPECT_LE(l.size(), 20u) << l;  // 100 px at 12 px: never ~more than 16 chars
  // Everything fits when allowed enough lines; rejoined, it is the prompt.
  auto all = wrap_label_text(p, 100, 12, 100);
  std::string joined;
  for (const auto& l : all) joined += (joined.empty() ? "" : " ") + l;
  EXPECT_EQ(joined, p);
  EXPECT_GT(all.size(), 3u);
  // A word longer than a line is broken, not dropped; UTF-8 is never split inside a code point.
  auto broken = wrap_label_text("supercalifragilisticexpialidocious", 60, 12, 10);
  EXPECT_GT(broken.size(), 1u);
  std::string b;
  for (const auto& l : broken) b += l;
  EXPECT_EQ(b, "supercalifragilisticexpialidocious");
  auto utf = wrap_label_text("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 30, 12, 10);
  for (const auto& l : utf) EXPECT_EQ(l.size() % 2, 0u);
}

TEST(ContactSheet, FindsDejaVuSans) {
  auto f = find_contact_sheet_font();
  EXPECT_TRUE(fs::is_regular_file(f)) << f;
  EXPECT_EQ(f.filename(), "DejaVuSans.ttf");
}

TEST(ContactSheet, MissingFontIsAClearError) {
  auto dir = test::scratch_dir("contact_sheet_no_font");
  Frame k = keyframe(0);
  auto o = small_options();
  o.font_file = dir / "no-such-font.ttf";
  try {
    write_contact_sheet(dir / "sheet.png", "s1", "t", {{&k, 0.0, 0, "p"}}, o);
    FAIL() << "expected an error";
  } catch (const EncodeError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("no-such-font.ttf"), std::string::npos) << msg;
    EXPECT_NE(msg.find("fonts-dejavu-core"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(dir / "sheet.png"));
  EXPECT_TRUE(fs::is_empty(dir));  // nothing half-written left behind
  // The same through $CLIPGEN_FONT.
  ::setenv("CLIPGEN_FONT", (dir / "other.ttf").c_str(), 1);
  try {
    find_contact_sheet_font();
    ::unsetenv("CLIPGEN_FONT");
    FAIL() << "expected an error";
  } catch (const EncodeError& e) {
    ::unsetenv("CLIPGEN_FONT");
    EXPECT_NE(std::string(e.what()).find("other.ttf"), std::string::npos) << e.what();
  }
}

TEST(ContactSheet, RendersGridWithThumbnailsAndLabels) {
  auto dir = test::scratch_dir("contact_sheet");
  std::vector<Frame> frames;
  for (int i = 0; i < 5; ++i) frames.push_back(keyframe(i));
  const std::string long_prompt =
      "a lighthouse on a rocky coast at dusk, dramatic clouds, volumetric light, 35mm photograph, highly detailed";
  std::vector<ContactSheetEntry> entries = {
      {&frames[0], 0.0, 0, "a fox"},
      {&frames[1], 2.5, 60, long_prompt},
      {&frames[2], 5.0, 120, ""},  // no prompt: only the time line carries text
      {&frames[3], 7.5, 180, "WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW"},
      {&frames[4], 10.0, 240, "x"},
  };
  const auto o = small_options();
  const auto file = dir / "intro.contact.png";
  write_contact_sheet(file, "intro", "Opening shot: the coast", entries, o);
  ASSERT_TRUE(fs::exists(file));
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_EQ(e.path().filename(), "intro.contact.png");

  Frame sheet = read_image(file);
  // Size as designed (header comment of contact_sheet.h): 3 columns, 2 rows, 64×36 thumbnails
  // (64·72/128), line height 12 + 6, label = (1 + 2 prompt lines) · 18.
  const int p = 8, L = 18, tw = 64, th = 36, lh = 3 * L;
  EXPECT_EQ(sheet.width, p + 3 * (tw + p));                // 224
  EXPECT_EQ(sheet.height, p + L + p + 2 * (th + lh + p));  // 230
  auto layout = contact_sheet_layout(5, 128, 72, o);
  ASSERT_EQ(layout.width, sheet.width);
  ASSERT_EQ(layout.height, sheet.height);

  for (int i = 0; i < 5; ++i) {
    const int cx = p + (i % 3) * (tw + p), cy = p + L + p + (i / 3) * (th + lh + p);
    const Rect& t = layout.thumbs[static_cast<size_t>(i)];
    EXPECT_EQ(t.x, cx);
    EXPECT_EQ(t.y, cy);
    // Thumbnail = the keyframe halved by area averaging: pixel (u, v) averages source x = 2u, 2u+1 and
    // y = 2v, 2v+1, i.e. R = 4u + 1, G = 6v + 1.5 (rounded either way), B = 30 + 40i — every pixel,
    // edges included.
    int worst = 0;
    for (int v = 0; v < th; ++v)
      for (int u = 0; u < tw; ++u) {
        const auto* px = sheet.pixel(cx + u, cy + v);
        worst = std::max({worst, std::abs(2 * px[0] - (8 * u + 2)), std::abs(2 * px[1] - (12 * v + 3)),
                          std::abs(2 * px[2] - 2 * (30 + 40 * i))});
      }
    EXPECT_LE(worst, 1) << "thumbnail " << i << " (max error in half levels)";

    // Labels: the time line (first line slot) has text in the time colour; prompt slots have text when
    // there is a prompt and none when there is not.
    const int ly = cy + th;
    const int time_ink = ink(sheet, cx, ly, cx + tw, ly + L, o.background);
    EXPECT_GT(time_ink, 40) << "time label of " << i;
    int yellow = 0;
    for (int y = ly; y < ly + L; ++y)
      for (int x = cx; x < cx + tw; ++x) {
        const auto* px = sheet.pixel(x, y);
        if (px[0] > 200 && px[1] > 150 && px[2] < 140) ++yellow;
      }
    EXPECT_GT(yellow, 10) << "time label colour of " << i;
    const int prompt_ink = ink(sheet, cx, ly + L, cx + tw, ly + lh, o.background);
    if (entries[static_cast<size_t>(i)].prompt.empty())
      EXPECT_EQ(prompt_ink, 0) << "empty prompt of " << i;
    else
      EXPECT_GT(prompt_ink, 5) << "prompt of " << i;
    if (i == 1 || i == 3) {  // two full prompt lines
      EXPECT_GT(ink(sheet, cx, ly + 2 * L, cx + tw, ly + 3 * L, o.background), 20) << "second prompt line of " << i;
    }
    if (i == 0 || i == 4) {  // short prompts: one line, the second slot stays empty
      EXPECT_EQ(ink(sheet, cx, ly + 2 * L, cx + tw, ly + 3 * L, o.background), 0) << i;
    }
  }
  // The long prompt is truncated to two lines; the wide one ("WWW…") is cut, not spilled: every pixel
  // of the padding between and around cells is background (and the top padding above the header).
  for (int y = 0; y < p; ++y)
    for (int x = 0; x < sheet.width; ++x) ASSERT_TRUE(is_background(sheet, x, y, o.background)) << x << "," << y;
  for (int y = p + L; y < sheet.height; ++y)  // below the header line, which spans the full width
    for (int c = 0; c <= 3; ++c)
      for (int x = c * (tw + p); x < c * (tw + p) + p; ++x)
        ASSERT_TRUE(is_background(sheet, x, y, o.background)) << "padding pixel " << x << "," << y;
  // The header line carries the shot id and title; the row gap under it is background.
  EXPECT_GT(ink(sheet, p, p, sheet.width - p, p + L, o.background), 100);
  for (int x = 0; x < sheet.width; ++x)
    for (int y = p + L; y < p + L + p; ++y) ASSERT_TRUE(is_background(sheet, x, y, o.background)) << x << "," << y;
  // The cell after the last keyframe (row 2, column 3) is empty.
  EXPECT_EQ(ink(sheet, p + 2 * (tw + p), p + L + p + th + lh + p, sheet.width - p, sheet.height, o.background), 0);
}

TEST(ContactSheet, DifferentAspectIsLetterboxed) {
  // The first keyframe sets the thumbnail box (64×36); a square keyframe is fitted (36×36), centred.
  Frame wide = keyframe(0), square = keyframe(1, 72, 72);
  auto o = small_options();
  Frame sheet = render_contact_sheet("s", "", {{&wide, 0, 0, "a"}, {&square, 1, 24, "b"}}, o);
  auto l = contact_sheet_layout(2, 128, 72, o);
  const Rect& t = l.thumbs[1];
  EXPECT_TRUE(is_background(sheet, t.x + 5, t.y + 18, o.background));   // left bar
  EXPECT_TRUE(is_background(sheet, t.x + 60, t.y + 18, o.background));  // right bar
  const auto* mid = sheet.pixel(t.x + 32, t.y + 18);                    // the image: u = 18 of 36
  EXPECT_NEAR(mid[2], 70, 2);
  EXPECT_NEAR(mid[0], 2 * (18 * 2) + 1, 3);
}

TEST(ContactSheet, NoKeyframesIsAnError) {
  EXPECT_THROW(render_contact_sheet("s", "t", {}, small_options()), EncodeError);
  Frame empty;
  EXPECT_THROW(render_contact_sheet("s", "t", {{&empty, 0, 0, "p"}}, small_options()), EncodeError);
}

TEST(ContactSheet, DefaultSizesFitTheTimeLabel) {
  // With the default options a time label (even past an hour) fits its thumbnail's width un-truncated.
  ContactSheetOptions o;
  const auto label = contact_sheet_time_label(3725.042, 89401);
  EXPECT_EQ(wrap_label_text(label, o.thumb_width - 4, o.font_size, 1), std::vector<std::string>{label});
}
