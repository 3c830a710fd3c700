#include "configs/report.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <vector>

#include "configs/yaml_reader.h"

namespace clipgen::configs {
namespace {

using detail::format_number;

std::string quoted(const std::string& s) { return nlohmann::json(s).dump(); }

std::string negative_text(const std::optional<std::string>& s) { return s ? quoted(*s) : "~  # none"; }

std::string pct(double f) { return format_number(std::round(f * 1000) / 10) + "%"; }

std::string aspect(int w, int h) {
  const int g = std::gcd(w, h);
  if (g > 0 && w / g <= 32 && h / g <= 32) return std::to_string(w / g) + ":" + std::to_string(h / g);
  return format_number(std::round(100.0 * w / h) / 100) + ":1";
}

std::string bits(int64_t bps) {
  if (bps >= 1000000 && bps % 100000 == 0) return format_number(bps / 1e6) + " Mb/s";
  if (bps >= 1000) return format_number(bps / 1e3) + " kb/s";
  return std::to_string(bps) + " b/s";
}

std::string rate_control(const VideoSettings& v) {
  std::string s = v.rate_control == "crf" ? "crf " + std::to_string(v.crf) : "bitrate " + bits(v.bitrate);
  if (v.maxrate) s += ", maxrate " + bits(v.maxrate);
  if (v.bufsize) s += ", bufsize " + bits(v.bufsize);
  return s;
}

std::string audio_short(const AudioSettings& a) {
  if (!a.enabled) return "none";
  return a.codec + " " + format_number(a.sample_rate / 1000.0) + " kHz " +
         (a.channels == 2 ? std::string("stereo") : std::to_string(a.channels) + "ch");
}

std::string seconds(double s) { return s > 0 ? format_number(std::round(s * 1000) / 1000) + "s" : "none"; }

std::string pad(std::string s, size_t w) {
  if (s.size() < w) s.append(w - s.size(), ' ');
  return s;
}

std::string rstrip(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::string zone_line(const Insets& z, int W, int H) {
  const int t = static_cast<int>(std::lround(z.top * H)), b = static_cast<int>(std::lround(z.bottom * H));
  const int l = static_cast<int>(std::lround(z.left * W)), r = static_cast<int>(std::lround(z.right * W));
  std::ostringstream o;
  o << "top " << t << " px (" << pct(z.top) << "), bottom " << b << " px (" << pct(z.bottom) << "), left " << l
    << " px (" << pct(z.left) << "), right " << r << " px (" << pct(z.right) << ")";
  return o.str();
}

std::string zone_area(const Insets& z, int W, int H, const char* label) {
  const int t = static_cast<int>(std::lround(z.top * H)), b = static_cast<int>(std::lround(z.bottom * H));
  const int l = static_cast<int>(std::lround(z.left * W)), r = static_cast<int>(std::lround(z.right * W));
  std::ostringstream o;
  o << label << " x " << l << ".." << (W - r) << ", y " << t << ".." << (H - b) << " (" << (W - l - r) << "x"
    << (H - t - b) << ")";
  return o.str();
}

bool any(const Insets& z) { return z.top > 0 || z.bottom > 0 || z.left > 0 || z.right > 0; }

}  // namespace

std::string format_rate(Rational fps) {
  if (fps.den == 1) return std::to_string(fps.num);
  return std::to_string(fps.num) + "/" + std::to_string(fps.den) + " (" +
         format_number(std::round(fps.value() * 1000) / 1000) + ")";
}

std::string format_preset_table(const PresetRegistry& presets) {
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "RASTER", "FPS", "VIDEO", "PIX_FMT", "RATE", "CONTAINER", "AUDIO", "MAX", "DESCRIPTION"}};
  for (const auto& name : presets.names()) {
    const Preset& p = presets.get(name);
    rows.push_back({p.name, std::to_string(p.width) + "x" + std::to_string(p.height), format_rate(p.fps),
                    p.video.codec + " " + p.video.profile, p.video.pix_fmt, rate_control(p.video),
                    p.container + (p.faststart && (p.container == "mp4" || p.container == "mov") ? " +faststart" : ""),
                    audio_short(p.audio), seconds(p.max_duration), p.description});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) line += pad(r[i], i + 1 < r.size() ? width[i] + 2 : 0);
    out += rstrip(line) + "\n";
  }
  return out;
}

std::string format_preset_detail(const Preset& p) {
  std::ostringstream o;
  const int W = p.width, H = p.height;
  o << p.name << (p.description.empty() ? "" : " - " + p.description) << "\n";
  if (!p.source_file.empty()) o << "  file:         " << p.source_file.string() << "\n";
  o << "  raster:       " << W << "x" << H << " (" << aspect(W, H) << ") at " << format_rate(p.fps) << " fps\n";
  if (!p.raster_source.empty()) o << "                source: " << p.raster_source << "\n";
  const auto& v = p.video;
  o << "  video:        " << v.codec << ", profile " << v.profile << ", " << v.pix_fmt << ", " << v.color << " "
    << v.range << " range\n";
  o << "  rate control: " << rate_control(v)
    << (v.codec == "prores_ks" ? " (nominal; ProRes rate follows the profile)" : "") << "\n";
  o << "  GOP:          " << v.gop << " frames, " << (v.closed_gop ? "closed" : "open") << ", " << v.b_frames
    << " B-frames, encoder preset " << v.encoder_preset << "\n";
  for (const auto& [k, val] : v.options) o << "  option:       " << k << "=" << val << "\n";
  if (!p.video_source.empty()) o << "                source: " << p.video_source << "\n";
  const auto& a = p.audio;
  if (a.enabled)
    o << "  audio:        " << a.codec << ", " << a.sample_rate << " Hz, " << a.channels << " channels"
      << (a.bitrate > 0 ? ", " + bits(a.bitrate) : std::string()) << "\n";
  else
    o << "  audio:        none\n";
  if (!p.audio_source.empty()) o << "                source: " << p.audio_source << "\n";
  o << "  container:    " << p.container
    << (p.faststart && (p.container == "mp4" || p.container == "mov") ? " (+faststart: index before the media data)"
                                                                      : "")
    << "\n";
  o << "  max duration: " << seconds(p.max_duration) << "\n";
  if (!p.max_duration_source.empty()) o << "                source: " << p.max_duration_source << "\n";
  const auto& z = p.safe_zones;
  o << "  safe zones (insets from each edge of " << W << "x" << H << "):\n";
  struct Row {
    const char* name;
    const Insets* zone;
    const std::string* source;
    const char* area;
  };
  for (const Row& r : {Row{"action safe:", &z.action_safe, &z.action_safe_source, "keep action inside"},
                       Row{"title safe:", &z.title_safe, &z.title_safe_source, "keep titles inside"},
                       Row{"platform UI:", &z.platform_ui, &z.platform_ui_source, "uncovered by the UI:"}}) {
    if (!any(*r.zone)) {
      o << "    " << pad(r.name, 14) << "none\n";
      continue;
    }
    o << "    " << pad(r.name, 14) << zone_line(*r.zone, W, H) << "\n";
    o << "                  " << zone_area(*r.zone, W, H, r.area) << "\n";
    if (!r.source->empty()) o << "                  source: " << *r.source << "\n";
  }
  if (any(z.platform_ui)) {
    const Insets both{
        std::max(z.title_safe.top, z.platform_ui.top), std::max(z.title_safe.bottom, z.platform_ui.bottom),
        std::max(z.title_safe.left, z.platform_ui.left), std::max(z.title_safe.right, z.platform_ui.right)};
    o << "    titles on this platform: " << zone_area(both, W, H, "inside") << "\n";
  }
  return o.str();
}

std::string format_shot(const Shot& s) {
  std::ostringstream o;
  const Preset& p = s.preset;
  o << "id: " << s.id << "\n";
  o << "source: " << s.source_file.string() << ":" << s.source_line << "\n";
  o << "preset: " << p.name << " (" << p.width << "x" << p.height << ", " << format_rate(p.fps) << " fps, "
    << p.video.codec << ", " << p.container << ")\n";
  o << "fps: " << format_rate(s.fps) << "\n";
  o << "frames: " << s.frames << "  # " << format_number(std::round(s.duration * 1000) / 1000) << "s\n";
  o << "seed: " << s.seed << (s.seed == default_seed(s.id) ? "  # derived from the id" : "") << "\n";
  o << "prompt: " << quoted(s.prompt) << "\n";
  o << "negative_prompt: " << negative_text(s.negative_prompt) << "\n";
  if (!s.title.empty()) o << "title: " << quoted(s.title) << "\n";
  o << "keyframes:\n";
  for (const auto& k : s.keyframes) {
    o << "  - at: " << format_number(std::round(k.at_seconds * 1000) / 1000) << "s  # frame " << k.frame << "\n";
    o << "    prompt: " << quoted(k.prompt) << "\n";
    o << "    negative_prompt: " << negative_text(k.negative_prompt) << "\n";
    if (k.image) {
      o << "    image: " << k.image->string() << "\n";
      o << "    strength: " << format_number(k.strength) << "\n";
    }
  }
  const auto& sm = s.sampler;
  o << "sampler:\n  name: " << sm.name << "\n  steps: " << sm.steps << "\n  guidance: " << format_number(sm.guidance)
    << "\n  sigma_schedule: " << sm.sigma_schedule << "\n  clip_skip: " << sm.clip_skip << "\n";
  const auto& m = s.motion;
  o << "motion:\n  motion_bucket_id: " << m.motion_bucket_id << "\n  fps: " << m.fps_conditioning
    << "\n  noise_aug_strength: " << format_number(m.noise_aug_strength) << "\n  decode_chunk: " << m.decode_chunk
    << "\n  num_frames: " << m.num_frames << (m.num_frames == 0 ? "  # the temporal model's own" : "")
    << "\n  overlap: " << m.overlap
    << "\n  transition_frames: " << m.transition_frames << "\n  continuity: " << format_number(m.continuity)
    << "\n  min_guidance: " << format_number(m.min_guidance) << "\n  max_guidance: " << format_number(m.max_guidance)
    << "\n  generation_fps: " << m.generation_fps << "\n  steps: " << m.steps << "\n";
  auto model = [](const ModelRef& r) {
    switch (r.kind) {
      case ModelRef::Kind::Builtin:
        return r.path.empty() ? std::string("builtin  # no video model yet: keyframes held and cross-faded")
                              : "builtin  # " + r.path.string();
      case ModelRef::Kind::Procedural:
        return std::string("procedural  # the procedural stand-in scene, not diffusion");
      case ModelRef::Kind::None:
        return std::string("none  # keyframes held and cross-faded");
      case ModelRef::Kind::DiffusersFolder:
        return r.path.string() + "  # diffusers folder";
      case ModelRef::Kind::SingleFile:
        return r.path.string() + "  # single .safetensors file";
    }
    return std::string("builtin");
  };
  // A single file's original_config and settings, when the shot gives them (settings as JSON flow text).
  auto single_file_extras = [&o](const ModelRef& r) {
    if (r.original_config.empty() && !r.ignore_original_config && r.settings.empty()) return;
    const auto j = nlohmann::json::parse(r.to_json());
    if (j.contains("original_config")) o << "    # original_config: " << j["original_config"].get<std::string>() << "\n";
    if (j.contains("settings")) o << "    # settings: " << j["settings"].dump() << "\n";
  };
  o << "models:\n  keyframe: " << model(s.keyframe_model) << "\n";
  single_file_extras(s.keyframe_model);
  o << "  temporal: " << model(s.temporal_model) << "\n";
  if (s.gen_width > 0 && s.gen_height > 0)
    o << "size:\n  width: " << s.gen_width << "\n  height: " << s.gen_height << "\n";
  else
    o << "size: model-native  # the model's own size in the preset's aspect\n";
  o << "precision: " << s.precision << (s.precision == "auto" ? "  # fp32 on CPU, fp16 on CUDA" : "") << "\n";
  o << "post:\n  fit: " << s.post.fit << "\n  retime: " << s.post.retime << "\n";
  o << "output: " << s.output.string() << "\n";
  o << "audio: " << (s.audio ? s.audio->string() : std::string("none")) << "\n";
  return o.str();
}

}  // namespace clipgen::configs
