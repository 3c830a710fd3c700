// Shared by the encode/post/audio/image_io tests: running the real ffmpeg/ffprobe, synthetic frames,
// and the delivery presets of issue 2 as Preset structs.
#pragma once
#include <array>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "configs/preset.h"
#include "stages/frame.h"
#include "tests/test_util.h"

namespace clipgen::test {

inline const nlohmann::json* stream_of(const nlohmann::json& probe, const std::string& type) {
  for (const auto& s : probe["streams"])
    if (s.value("codec_type", "") == type) return &s;
  return nullptr;
}

// Decodes frame `index` of the video in `file` to RGB24 with the given YUV matrix and range
// (explicit, so the test checks the encoder's conversion rather than trusting tags).
inline std::vector<uint8_t> decode_rgb(const std::filesystem::path& file, int index, int w, int h,
                                       const std::string& range = "tv") {
  std::string cmd = "ffmpeg -v error -i " + quote(file) + " -vf \"select=eq(n\\," + std::to_string(index) +
                    "),scale=in_color_matrix=bt709:in_range=" + range +
                    ":flags=accurate_rnd+full_chroma_int,format=rgb24\" -frames:v 1 -f rawvideo -";
  std::string raw = run_command(cmd);
  if (raw.size() != static_cast<size_t>(w) * h * 3)
    throw std::runtime_error("decoded " + std::to_string(raw.size()) + " bytes, expected " + std::to_string(w * h * 3));
  return {raw.begin(), raw.end()};
}

// The flat patch colour every synthetic frame carries in its top-left quarter (a saturated orange:
// BT.601 and BT.709 matrices disagree on it by >8 levels, so a wrong matrix is caught).
inline constexpr std::array<uint8_t, 3> kPatch = {200, 80, 40};

// Colour bars (bottom half), a horizontal gradient moving with `index` (top-right quarter), and the
// flat patch (top-left quarter).
inline stages::Frame synthetic_frame(int w, int h, int index) {
  static const uint8_t bars[7][3] = {{235, 235, 235}, {235, 235, 16}, {16, 235, 235}, {16, 235, 16},
                                     {235, 16, 235},  {235, 16, 16},  {16, 16, 235}};
  stages::Frame f(w, h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = f.pixel(x, y);
      if (y >= h / 2) {
        const uint8_t* c = bars[std::min(6, x * 7 / w)];
        p[0] = c[0], p[1] = c[1], p[2] = c[2];
      } else if (x < w / 2) {
        p[0] = kPatch[0], p[1] = kPatch[1], p[2] = kPatch[2];
      } else {
        uint8_t v = static_cast<uint8_t>((x * 255 / w + index * 8) & 255);
        p[0] = v, p[1] = static_cast<uint8_t>(255 - v), p[2] = static_cast<uint8_t>(y * 255 / h);
      }
    }
  }
  return f;
}

// The delivery presets of issue 2, built in code (the encode tests must not depend on the preset
// loader). Encoder speed presets are the fast ones: these tests check settings, not quality.
inline configs::Preset preset_vertical_short() {
  configs::Preset p;
  p.name = "vertical-short";
  p.width = 1080, p.height = 1920, p.fps = {30, 1};
  p.video.codec = "libx264", p.video.profile = "high", p.video.pix_fmt = "yuv420p";
  p.video.rate_control = "crf", p.video.crf = 18, p.video.gop = 15, p.video.closed_gop = true, p.video.b_frames = 2;
  p.video.encoder_preset = "veryfast";
  p.audio.codec = "aac", p.audio.sample_rate = 48000, p.audio.channels = 2, p.audio.bitrate = 192000;
  p.container = "mp4", p.faststart = true;
  return p;
}
inline configs::Preset preset_hd() {
  auto p = preset_vertical_short();
  p.name = "hd", p.width = 1920, p.height = 1080;
  return p;
}
inline configs::Preset preset_uhd() {
  auto p = preset_vertical_short();
  p.name = "uhd", p.width = 3840, p.height = 2160, p.video.gop = 15;
  p.video.encoder_preset = "superfast";  // (ultrafast drops CABAC/8x8dct, so x264 would signal Main)
  return p;
}
inline configs::Preset preset_dci_flat() {
  auto p = preset_vertical_short();
  p.name = "dci-flat-2k", p.width = 1998, p.height = 1080, p.fps = {24, 1}, p.video.gop = 12;
  return p;
}
inline configs::Preset preset_dci_scope() {
  auto p = preset_dci_flat();
  p.name = "dci-scope-2k", p.width = 2048, p.height = 858;
  return p;
}
inline configs::Preset preset_prores() {
  configs::Preset p;
  p.name = "prores-master";
  p.width = 1920, p.height = 1080, p.fps = {24, 1};
  p.video.codec = "prores_ks", p.video.profile = "hq", p.video.pix_fmt = "yuv422p10le";
  p.video.gop = 1, p.video.b_frames = 0;
  p.audio.codec = "pcm_s24le", p.audio.sample_rate = 48000, p.audio.channels = 2, p.audio.bitrate = 0;
  p.container = "mov", p.faststart = true;
  return p;
}
inline configs::Preset preset_hevc_mkv() {
  configs::Preset p;
  p.name = "hevc-mkv";
  p.width = 1280, p.height = 720, p.fps = {30000, 1001};
  p.video.codec = "libx265", p.video.profile = "main", p.video.pix_fmt = "yuv420p";
  p.video.crf = 22, p.video.gop = 15, p.video.b_frames = 2, p.video.encoder_preset = "ultrafast";
  p.container = "mkv", p.faststart = false;
  return p;
}
inline configs::Preset preset_vp9_webm() {
  configs::Preset p;
  p.name = "vp9-webm";
  p.width = 640, p.height = 360, p.fps = {30, 1};
  p.video.codec = "libvpx-vp9", p.video.profile = "0", p.video.pix_fmt = "yuv420p";
  p.video.crf = 31, p.video.gop = 30, p.video.b_frames = 0, p.video.encoder_preset = "realtime";
  p.video.options = {{"cpu-used", "8"}};
  p.audio.codec = "libopus", p.audio.sample_rate = 48000, p.audio.channels = 2, p.audio.bitrate = 128000;
  p.container = "webm", p.faststart = false;
  return p;
}
inline configs::Preset preset_av1(const std::string& container) {
  configs::Preset p;
  p.name = "av1-" + container;
  p.width = 640, p.height = 360, p.fps = {24, 1};
  p.video.codec = "libsvtav1", p.video.profile = "main", p.video.pix_fmt = "yuv420p";
  p.video.crf = 35, p.video.gop = 24, p.video.b_frames = 0, p.video.encoder_preset = "10";
  p.container = container, p.faststart = container == "mp4";
  return p;
}

}  // namespace clipgen::test
