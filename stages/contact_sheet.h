// Contact sheet: one PNG per shot showing its keyframes as a grid of thumbnails, each with its time
// ("00:00:02.500 · frame 60") and its prompt under it, and the shot's id/title on top. Text is drawn by
// libavfilter's drawtext (FreeType) with DejaVu Sans (Debian package fonts-dejavu-core). No LibTorch here.
//
// Layout (all in pixels; p = padding, L = line_height(), n keyframes):
//   columns  = min(n, options.columns)            rows = ceil(n / columns)
//   thumb    = thumb_width × max(2, round(thumb_width · h0 / w0)), (w0, h0) = the first keyframe's size;
//              each keyframe is scaled (area average in RGB) to fit that box, centred (letterboxed if its aspect
//              differs from the first one's)
//   label    = thumb_width × (1 + prompt_lines) · L, under the thumbnail: the time line, then the prompt
//              word-wrapped to the thumbnail width, at most prompt_lines lines, the last one ending in "…"
//              when the prompt is longer (text never spills into a neighbouring cell)
//   header   = one line of height L: "<shot id> · <title>"
//   width    = p + columns · (thumb_width + p)
//   height   = p + L + p + rows · (thumb_h + label_h + p)
// Cell i (row-major) has its thumbnail at x = p + (i % columns)·(thumb_width + p),
// y = 2p + L + (i / columns)·(thumb_h + label_h + p), and its label right below it.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "stages/frame.h"

namespace clipgen::stages {

struct ContactSheetEntry {
  const Frame* image = nullptr;  // the keyframe (RGB24), not owned
  double time_seconds = 0;       // where it sits in the clip
  int64_t frame_index = 0;       // the output frame it sits at
  std::string prompt;
};

struct ContactSheetOptions {
  int columns = 4;  // at most this many thumbnails per row
  int thumb_width = 256;
  int prompt_lines = 3;  // prompt lines under each thumbnail
  int font_size = 13;    // pixels
  int padding = 12;
  uint8_t background[3] = {24, 24, 24};
  std::string text_color = "0xF0F0F0";  // drawtext colour
  std::string time_color = "0xFFD060";
  // The TrueType font. Empty: $CLIPGEN_FONT, then DejaVuSans.ttf at the usual Linux paths, then
  // fontconfig's match for "DejaVu Sans". A given path that does not exist is an error.
  std::filesystem::path font_file;

  int line_height() const { return font_size + (font_size + 1) / 2; }
};

struct Rect {
  int x = 0, y = 0, width = 0, height = 0;
};

struct ContactSheetLayout {
  int width = 0, height = 0, columns = 0, rows = 0;
  Rect header;
  std::vector<Rect> thumbs, labels;  // per keyframe: the thumbnail box and the label box below it
};

// The layout described above for `count` keyframes whose first one is first_w × first_h.
// Throws EncodeError for count == 0 or invalid options.
ContactSheetLayout contact_sheet_layout(int count, int first_w, int first_h, const ContactSheetOptions& options = {});

// "HH:MM:SS.mmm · frame N" (the middle dot is U+00B7).
std::string contact_sheet_time_label(double seconds, int64_t frame_index);

// Word-wraps `text` to at most `max_lines` lines no wider than `max_width` pixels at `font_size` (by a
// conservative estimate of DejaVu Sans advances); a word wider than a line is broken, and text that does
// not fit ends with "…". Whitespace runs (incl. newlines) become single spaces.
std::vector<std::string> wrap_label_text(const std::string& text, int max_width, int font_size, int max_lines);

// The font file the contact sheet uses (see ContactSheetOptions::font_file). Throws EncodeError naming the
// missing path, or naming the package fonts-dejavu-core when no DejaVu Sans can be found.
std::filesystem::path find_contact_sheet_font(const std::filesystem::path& requested = {});

// Draws the contact sheet and returns it as a frame.
Frame render_contact_sheet(const std::string& shot_id, const std::string& title,
                           const std::vector<ContactSheetEntry>& keyframes, const ContactSheetOptions& options = {});

// render_contact_sheet, written as a PNG to `file` atomically (temporary name, then rename).
void write_contact_sheet(const std::filesystem::path& file, const std::string& shot_id, const std::string& title,
                         const std::vector<ContactSheetEntry>& keyframes, const ContactSheetOptions& options = {});

}  // namespace clipgen::stages
