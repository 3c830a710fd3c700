#include "stages/contact_sheet.h"

#include <fontconfig/fontconfig.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" {
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/opt.h>
}

#include "core/error.h"
#include "stages/image_io.h"
#include "stages/libav.h"

namespace clipgen::stages {
namespace fs = std::filesystem;
namespace {

constexpr const char* kFontPackage = "fonts-dejavu-core";
constexpr const char* kEllipsis = "\xE2\x80\xA6";  // U+2026

// ---- text measurement (estimate) ------------------------------------------------------------------------

// Decodes one UTF-8 code point at s[i]; returns its byte length (1 for an invalid byte).
size_t utf8_next(const std::string& s, size_t i, uint32_t& cp) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  if (i + len > s.size()) len = 1;
  if (len == 1) {
    cp = c;
    return 1;
  }
  cp = c & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return len;
}

// Advance widths in em, rounded up from DejaVu Sans' own (e.g. 'a' 0.613, 'H' 0.752, 'W' 0.989), so a
// line measured with them is never narrower than drawtext renders it (apart from kerning-free rounding,
// which the label canvas clips anyway).
double advance_em(uint32_t cp) {
  if (cp == ' ') return 0.33;
  if (cp >= 0x80) return 1.0;  // accented Latin is ~0.65, CJK/emoji ~1.0: take the wide case
  const char c = static_cast<char>(cp);
  if (std::strchr("ijlI.,:;'|!`", c)) return 0.36;
  if (std::strchr("frt()[]{}\"/\\-", c)) return 0.46;
  if (std::strchr("mwMW@%", c)) return 1.0;
  if (c >= 'A' && c <= 'Z') return 0.8;
  return 0.65;
}

double text_width(const std::string& s, int font_size) {
  double em = 0;
  uint32_t cp;
  for (size_t i = 0; i < s.size(); i += utf8_next(s, i, cp)) {
    utf8_next(s, i, cp);
    em += advance_em(cp);
  }
  return em * font_size;
}

// Removes the last code point of s.
void pop_code_point(std::string& s) {
  if (s.empty()) return;
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  s.erase(i);
}

std::string two(int v) {
  char b[8];
  std::snprintf(b, sizeof b, "%02d", v);
  return b;
}

// ---- drawing --------------------------------------------------------------------------------------------

struct TextItem {
  std::string text, color;
  int x = 0, y = 0;
};

// Draws `items` onto `canvas` with one drawtext filter each, in one filter graph
// (buffer → drawtext → … → buffersink, rgb24 throughout). Text outside the canvas is clipped.
Frame draw_text(const Frame& canvas, const std::vector<TextItem>& items, const std::string& font, int font_size) {
  if (items.empty()) return canvas;
  const AVFilter* drawtext = avfilter_get_by_name("drawtext");
  if (!drawtext)
    throw EncodeError("contact sheet: this libavfilter has no drawtext filter (it was built without libfreetype)");
  av::FilterGraphPtr graph(avfilter_graph_alloc());
  if (!graph) throw EncodeError("avfilter_graph_alloc: out of memory");
  const std::string args = "video_size=" + std::to_string(canvas.width) + "x" + std::to_string(canvas.height) +
                           ":pix_fmt=rgb24:time_base=1/1:pixel_aspect=1/1";
  AVFilterContext* src = nullptr;
  AVFilterContext* sink = nullptr;
  av::check(
      avfilter_graph_create_filter(&src, avfilter_get_by_name("buffer"), "in", args.c_str(), nullptr, graph.get()),
      "contact sheet: creating the buffer source (" + args + ")");
  AVFilterContext* prev = src;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& it = items[i];
    const std::string what = "contact sheet: drawtext for '" + it.text + "' with font " + font;
    AVFilterContext* dt = avfilter_graph_alloc_filter(graph.get(), drawtext, ("text" + std::to_string(i)).c_str());
    if (!dt) throw EncodeError("avfilter_graph_alloc_filter: out of memory");
    // Options are set on the filter directly, not through a graph description, so the text needs no
    // filter-graph escaping; expansion=none draws it literally (no %{...} expansion).
    auto set = [&](const char* key, const std::string& value) {
      av::check(av_opt_set(dt, key, value.c_str(), AV_OPT_SEARCH_CHILDREN), what + ": setting " + key + "=" + value);
    };
    set("fontfile", font);
    set("text", it.text);
    set("expansion", "none");
    set("fontsize", std::to_string(font_size));
    set("fontcolor", it.color);
    set("x", std::to_string(it.x));
    set("y", std::to_string(it.y));
    av::check(avfilter_init_str(dt, nullptr), what);
    av::check(avfilter_link(prev, 0, dt, 0), "contact sheet: linking the drawtext filters");
    prev = dt;
  }
  av::check(
      avfilter_graph_create_filter(&sink, avfilter_get_by_name("buffersink"), "out", nullptr, nullptr, graph.get()),
      "contact sheet: creating the buffer sink");
  const AVPixelFormat fmts[] = {AV_PIX_FMT_RGB24, AV_PIX_FMT_NONE};
  av::check(av_opt_set_int_list(sink, "pix_fmts", fmts, AV_PIX_FMT_NONE, AV_OPT_SEARCH_CHILDREN),
            "contact sheet: restricting the sink to rgb24");
  av::check(avfilter_link(prev, 0, sink, 0), "contact sheet: linking the buffer sink");
  av::check(avfilter_graph_config(graph.get(), nullptr), "contact sheet: configuring the text filter graph");

  auto in = av::make_video_frame(AV_PIX_FMT_RGB24, canvas.width, canvas.height);
  for (int y = 0; y < canvas.height; ++y)
    std::memcpy(in->data[0] + y * in->linesize[0], canvas.rgb.data() + static_cast<size_t>(y) * canvas.width * 3,
                static_cast<size_t>(canvas.width) * 3);
  in->pts = 0;
  in->sample_aspect_ratio = AVRational{1, 1};
  in->color_range = AVCOL_RANGE_JPEG;
  av::check(av_buffersrc_add_frame_flags(src, in.get(), 0), "contact sheet: feeding the text filter graph");
  av::check(av_buffersrc_close(src, 1, AV_BUFFERSRC_FLAG_PUSH), "contact sheet: closing the text filter graph input");
  auto out = av::make_frame();
  av::check(av_buffersink_get_frame(sink, out.get()), "contact sheet: reading the drawn text");
  if (out->width != canvas.width || out->height != canvas.height || out->format != AV_PIX_FMT_RGB24)
    throw EncodeError("contact sheet: the text filter graph changed the canvas");
  Frame result(canvas.width, canvas.height);
  for (int y = 0; y < canvas.height; ++y)
    std::memcpy(result.rgb.data() + static_cast<size_t>(y) * canvas.width * 3, out->data[0] + y * out->linesize[0],
                static_cast<size_t>(canvas.width) * 3);
  return result;
}

Frame filled(int w, int h, const uint8_t bg[3]) {
  Frame f(w, h);
  for (size_t i = 0; i < f.rgb.size(); i += 3) std::memcpy(f.rgb.data() + i, bg, 3);
  return f;
}

void paste(Frame& dst, const Frame& src, int x0, int y0) {
  for (int y = 0; y < src.height; ++y)
    std::memcpy(dst.pixel(x0, y0 + y), src.pixel(0, y), static_cast<size_t>(src.width) * 3);
}

// 1-D area-resampling taps: output pixel o covers the input interval [o·s, (o+1)·s), s = n_in / n_out,
// and averages the input pixels by how much of each it covers.
struct Taps {
  int first = 0;
  std::vector<float> w;
};
std::vector<Taps> area_taps(int n_in, int n_out) {
  const double s = double(n_in) / n_out;
  std::vector<Taps> taps(static_cast<size_t>(n_out));
  for (int o = 0; o < n_out; ++o) {
    const double lo = o * s, hi = std::min<double>((o + 1) * s, n_in);
    auto& t = taps[static_cast<size_t>(o)];
    t.first = static_cast<int>(std::floor(lo));
    const int last = std::min(static_cast<int>(std::ceil(hi)), n_in) - 1;
    double sum = 0;
    for (int i = t.first; i <= last; ++i) {
      const double w = std::max(0.0, std::min(hi, i + 1.0) - std::max(lo, double(i)));
      t.w.push_back(static_cast<float>(w));
      sum += w;
    }
    for (auto& w : t.w) w = static_cast<float>(w / sum);
  }
  return taps;
}

// Scales `img` to fit box_w × box_h keeping its aspect, by area averaging in RGB (separable, no YUV
// round trip), and rounds to 8 bits.
Frame fit_thumbnail(const Frame& img, int box_w, int box_h) {
  const double s = std::min(double(box_w) / img.width, double(box_h) / img.height);
  const int w = std::clamp(static_cast<int>(std::lround(img.width * s)), 1, box_w);
  const int h = std::clamp(static_cast<int>(std::lround(img.height * s)), 1, box_h);
  const auto tx = area_taps(img.width, w), ty = area_taps(img.height, h);
  std::vector<float> rows(static_cast<size_t>(img.height) * w * 3);  // horizontal pass
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < w; ++x) {
      const auto& t = tx[static_cast<size_t>(x)];
      float acc[3] = {0, 0, 0};
      for (size_t k = 0; k < t.w.size(); ++k) {
        const uint8_t* p = img.pixel(t.first + static_cast<int>(k), y);
        for (int c = 0; c < 3; ++c) acc[c] += t.w[k] * p[c];
      }
      std::memcpy(&rows[(static_cast<size_t>(y) * w + x) * 3], acc, sizeof acc);
    }
  Frame out(w, h);
  for (int y = 0; y < h; ++y) {
    const auto& t = ty[static_cast<size_t>(y)];
    for (int x = 0; x < w; ++x) {
      float acc[3] = {0, 0, 0};
      for (size_t k = 0; k < t.w.size(); ++k) {
        const float* p = &rows[((static_cast<size_t>(t.first) + k) * w + x) * 3];
        for (int c = 0; c < 3; ++c) acc[c] += t.w[k] * p[c];
      }
      uint8_t* d = out.pixel(x, y);
      for (int c = 0; c < 3; ++c) d[c] = static_cast<uint8_t>(std::clamp(std::lround(acc[c]), 0L, 255L));
    }
  }
  return out;
}

std::filesystem::path fontconfig_match(const char* family) {
  if (!FcInit()) return {};
  fs::path found;
  FcPattern* pat = FcNameParse(reinterpret_cast<const FcChar8*>(family));
  if (!pat) return {};
  FcConfigSubstitute(nullptr, pat, FcMatchPattern);
  FcDefaultSubstitute(pat);
  FcResult res = FcResultNoMatch;
  FcPattern* match = FcFontMatch(nullptr, pat, &res);
  if (match) {
    FcChar8* file = nullptr;
    FcChar8* fam = nullptr;
    // fontconfig always answers with some font; only a real DejaVu Sans counts.
    if (FcPatternGetString(match, FC_FAMILY, 0, &fam) == FcResultMatch &&
        std::strcmp(reinterpret_cast<const char*>(fam), family) == 0 &&
        FcPatternGetString(match, FC_FILE, 0, &file) == FcResultMatch)
      found = reinterpret_cast<const char*>(file);
    FcPatternDestroy(match);
  }
  FcPatternDestroy(pat);
  return found;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------

fs::path find_contact_sheet_font(const fs::path& requested) {
  const std::string hint =
      std::string("(the contact sheet draws its labels with DejaVu Sans from the Debian package ") + kFontPackage +
      ": apt-get install " + kFontPackage + ")";
  if (!requested.empty()) {
    if (!fs::is_regular_file(requested)) throw EncodeError(requested.string() + ": font file not found " + hint);
    return requested;
  }
  if (const char* env = std::getenv("CLIPGEN_FONT"); env && *env) {
    if (!fs::is_regular_file(env))
      throw EncodeError(std::string(env) + " (from $CLIPGEN_FONT): font file not found " + hint);
    return env;
  }
  for (const char* p : {"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",    // Debian, Ubuntu
                        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",  // Fedora
                        "/usr/share/fonts/TTF/DejaVuSans.ttf",                // Arch
                        "/usr/share/fonts/dejavu/DejaVuSans.ttf", "/usr/local/share/fonts/DejaVuSans.ttf"})
    if (fs::is_regular_file(p)) return p;
  if (auto f = fontconfig_match("DejaVu Sans"); !f.empty() && fs::is_regular_file(f)) return f;
  throw EncodeError(
      "font DejaVu Sans (DejaVuSans.ttf) not found at the usual paths nor through fontconfig: install the "
      "Debian package " +
      std::string(kFontPackage) + " (apt-get install " + kFontPackage +
      "), or set CLIPGEN_FONT to a TrueType font file");
}

std::string contact_sheet_time_label(double seconds, int64_t frame_index) {
  const int64_t ms = std::llround(std::max(0.0, seconds) * 1000.0);
  const int64_t s = ms / 1000;
  char frac[8];
  std::snprintf(frac, sizeof frac, "%03d", static_cast<int>(ms % 1000));
  return two(static_cast<int>(s / 3600)) + ":" + two(static_cast<int>(s / 60 % 60)) + ":" +
         two(static_cast<int>(s % 60)) + "." + frac + " \xC2\xB7 frame " + std::to_string(frame_index);
}

std::vector<std::string> wrap_label_text(const std::string& text, int max_width, int font_size, int max_lines) {
  std::vector<std::string> words;
  std::string cur;
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20) {
      if (!cur.empty()) words.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) words.push_back(std::move(cur));

  std::vector<std::string> lines;
  std::string line;
  auto fits = [&](const std::string& s) { return text_width(s, font_size) <= max_width; };
  for (const auto& w : words) {
    if (!line.empty() && fits(line + " " + w)) {
      line += " " + w;
      continue;
    }
    if (!line.empty()) lines.push_back(std::move(line));
    line.clear();
    // A word wider than a line is broken at code points.
    uint32_t cp;
    for (size_t i = 0; i < w.size();) {
      const size_t n = utf8_next(w, i, cp);
      std::string next = line + w.substr(i, n);
      if (!line.empty() && !fits(next)) {
        lines.push_back(std::move(line));
        line = w.substr(i, n);
      } else {
        line = std::move(next);
      }
      i += n;
    }
  }
  if (!line.empty()) lines.push_back(std::move(line));
  if (max_lines <= 0) return {};
  if (static_cast<int>(lines.size()) > max_lines) {
    lines.resize(static_cast<size_t>(max_lines));
    std::string& last = lines.back();
    while (!last.empty() && !fits(last + kEllipsis)) pop_code_point(last);
    while (!last.empty() && last.back() == ' ') last.pop_back();
    last += kEllipsis;
  }
  return lines;
}

ContactSheetLayout contact_sheet_layout(int count, int first_w, int first_h, const ContactSheetOptions& o) {
  if (count <= 0) throw EncodeError("contact sheet: no keyframes");
  if (first_w <= 0 || first_h <= 0) throw EncodeError("contact sheet: empty keyframe image");
  if (o.columns <= 0 || o.thumb_width < 8 || o.font_size < 4 || o.prompt_lines < 0 || o.padding < 0)
    throw EncodeError(
        "contact sheet: columns, thumb_width (>= 8), font_size (>= 4), prompt_lines and padding "
        "must be positive");
  ContactSheetLayout l;
  const int p = o.padding, L = o.line_height();
  l.columns = std::min(count, o.columns);
  l.rows = (count + l.columns - 1) / l.columns;
  const int tw = o.thumb_width;
  const int th = std::max(2, static_cast<int>(std::lround(double(tw) * first_h / first_w)));
  const int lh = (1 + o.prompt_lines) * L;
  l.width = p + l.columns * (tw + p);
  l.height = p + L + p + l.rows * (th + lh + p);
  l.header = {p, p, l.width - 2 * p, L};
  for (int i = 0; i < count; ++i) {
    const int x = p + (i % l.columns) * (tw + p);
    const int y = 2 * p + L + (i / l.columns) * (th + lh + p);
    l.thumbs.push_back({x, y, tw, th});
    l.labels.push_back({x, y + th, tw, lh});
  }
  return l;
}

Frame render_contact_sheet(const std::string& shot_id, const std::string& title,
                           const std::vector<ContactSheetEntry>& keyframes, const ContactSheetOptions& o) {
  for (size_t i = 0; i < keyframes.size(); ++i) {
    const Frame* f = keyframes[i].image;
    if (!f || f->width <= 0 || f->height <= 0 || f->rgb.size() != static_cast<size_t>(f->width) * f->height * 3)
      throw EncodeError("contact sheet: keyframe " + std::to_string(i) + " has no (or a malformed) image");
  }
  if (keyframes.empty()) throw EncodeError("contact sheet: no keyframes");
  const auto font = find_contact_sheet_font(o.font_file).string();
  const auto l = contact_sheet_layout(static_cast<int>(keyframes.size()), keyframes[0].image->width,
                                      keyframes[0].image->height, o);
  const int L = o.line_height();
  const int text_dy = (L - o.font_size) / 2;  // text top inside its line slot
  const int max_text_w = o.thumb_width - 4;   // 2 px inset each side

  Frame sheet = filled(l.width, l.height, o.background);
  // Header.
  {
    std::string head = shot_id;
    if (!title.empty()) head += (head.empty() ? "" : " \xC2\xB7 ") + title;
    auto lines = wrap_label_text(head, l.header.width - 4, o.font_size, 1);
    std::vector<TextItem> items;
    if (!lines.empty()) items.push_back({lines[0], o.text_color, 2, text_dy});
    paste(sheet, draw_text(filled(l.header.width, l.header.height, o.background), items, font, o.font_size), l.header.x,
          l.header.y);
  }
  for (size_t i = 0; i < keyframes.size(); ++i) {
    const auto& k = keyframes[i];
    const Rect& tr = l.thumbs[i];
    Frame thumb = fit_thumbnail(*k.image, tr.width, tr.height);
    paste(sheet, thumb, tr.x + (tr.width - thumb.width) / 2, tr.y + (tr.height - thumb.height) / 2);

    const Rect& lr = l.labels[i];
    std::vector<TextItem> items;
    items.push_back({contact_sheet_time_label(k.time_seconds, k.frame_index), o.time_color, 2, text_dy});
    auto lines = wrap_label_text(k.prompt, max_text_w, o.font_size, o.prompt_lines);
    for (size_t j = 0; j < lines.size(); ++j)
      items.push_back({lines[j], o.text_color, 2, static_cast<int>(j + 1) * L + text_dy});
    // Each label is drawn on its own canvas, so text can never spill into a neighbouring cell.
    paste(sheet, draw_text(filled(lr.width, lr.height, o.background), items, font, o.font_size), lr.x, lr.y);
  }
  return sheet;
}

void write_contact_sheet(const fs::path& file, const std::string& shot_id, const std::string& title,
                         const std::vector<ContactSheetEntry>& keyframes, const ContactSheetOptions& options) {
  try {
    write_png(render_contact_sheet(shot_id, title, keyframes, options), file);
  } catch (Error& e) {
    e.add_context("contact sheet " + file.string());
    throw;
  }
}

}  // namespace clipgen::stages
