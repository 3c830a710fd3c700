// Preset files (configs/presets/*.yaml and user preset folders) → configs::Preset.
// The file format is documented in docs/presets.md.
#include "configs/preset.h"

#include <algorithm>
#include <cstdlib>
#include <set>

#include "configs/shot.h"
#include "configs/suggest.h"
#include "configs/yaml_reader.h"
#include "core/error.h"

namespace clipgen::configs {
namespace {

using detail::Diagnostics;
using detail::Reader;

const std::vector<std::string> kCodecs = {"libx264", "libx265", "prores_ks", "libvpx-vp9", "libsvtav1"};
const std::vector<std::string> kContainers = {"mp4", "mov", "mkv", "webm"};
const std::vector<std::string> kPixFmts = {"yuv420p",     "yuv420p10le", "yuv422p",
                                           "yuv422p10le", "yuv444p",     "yuv444p10le"};
const std::vector<std::string> kAudioCodecs = {"aac", "pcm_s16le", "pcm_s24le", "libopus"};

// Which codecs each container can carry (as libav muxes them).
bool container_accepts(const std::string& container, const std::string& codec) {
  if (container == "mkv") return true;
  if (container == "webm") return codec == "libvpx-vp9" || codec == "libsvtav1" || codec == "libopus";
  if (container == "mov") return codec != "libopus";
  if (container == "mp4") return codec != "prores_ks" && codec != "pcm_s16le" && codec != "pcm_s24le";
  return false;
}

std::optional<std::string> read_source(Reader& r, const YAML::Node& map, const std::string& path) {
  if (!map["source"]) return std::nullopt;
  return r.text(map["source"], detail::join_path(path, "source"), false);
}

void read_insets(Reader& r, const YAML::Node& n, const std::string& path, Insets& out, std::string& source) {
  if (!r.require_map(n, path, "top, bottom, left, right as fractions of the frame, and source")) return;
  r.check_keys(n, path, {"top", "bottom", "left", "right", "source"});
  auto side = [&](const char* key, double& v) {
    if (n[key])
      if (auto x = r.number(n[key], detail::join_path(path, key), 0, 0.5)) v = *x;
  };
  side("top", out.top);
  side("bottom", out.bottom);
  side("left", out.left);
  side("right", out.right);
  if (auto s = read_source(r, n, path)) source = *s;
  const bool any = out.top > 0 || out.bottom > 0 || out.left > 0 || out.right > 0;
  if (any && source.empty()) r.error(n, path, "expected a 'source:' naming where these figures come from, got none");
}

void read_preset(Reader& r, const YAML::Node& root, const std::filesystem::path& file, Preset& p) {
  if (!root.IsMap()) {
    r.expected(root, "", "a preset (a mapping with name, raster, video, audio, container, ...)");
    return;
  }
  r.check_keys(
      root, "",
      {"name", "description", "raster", "video", "audio", "container", "faststart", "max_duration", "safe_zones"});
  const std::string stem = file.stem().string();
  if (!root["name"]) {
    r.error(root, "name", "expected the preset name '" + stem + "' (the file name), got nothing");
  } else if (auto name = r.text(root["name"], "name", false)) {
    if (*name != stem) r.error(root["name"], "name", "expected '" + stem + "' (the file name), got '" + *name + "'");
    p.name = *name;
  }
  if (root["description"])
    if (auto d = r.text(root["description"], "description")) p.description = *d;

  // raster: width, height, fps, source
  const YAML::Node raster = root["raster"];
  if (!raster) {
    r.error(root, "raster", "expected a mapping (width, height, fps, source), got nothing");
  } else if (r.require_map(raster, "raster", "width, height, fps, source")) {
    r.check_keys(raster, "raster", {"width", "height", "fps", "source"});
    for (const char* key : {"width", "height", "fps"})
      if (!raster[key]) r.error(raster, std::string("raster.") + key, "expected a value, got nothing");
    if (raster["width"])
      if (auto v = r.integer(raster["width"], "raster.width", 16, Limits::max_dimension, "Limits::max_dimension"))
        p.width = static_cast<int>(*v);
    if (raster["height"])
      if (auto v = r.integer(raster["height"], "raster.height", 16, Limits::max_dimension, "Limits::max_dimension"))
        p.height = static_cast<int>(*v);
    if (raster["fps"])
      if (auto v = r.rate(raster["fps"], "raster.fps", 240)) p.fps = *v;
    if (auto s = read_source(r, raster, "raster")) p.raster_source = *s;
  }

  // video
  const YAML::Node video = root["video"];
  if (!video) {
    r.error(root, "video", "expected a mapping (codec, profile, pix_fmt, rate_control, ...), got nothing");
  } else if (r.require_map(video, "video", "codec, profile, pix_fmt, rate_control, ...")) {
    auto& v = p.video;
    r.check_keys(video, "video",
                 {"codec", "profile", "pix_fmt", "rate_control", "crf", "bitrate", "maxrate", "bufsize", "gop",
                  "closed_gop", "b_frames", "encoder_preset", "color", "range", "options", "source"});
    if (!video["codec"]) r.error(video, "video.codec", "expected a codec, got nothing");
    if (video["codec"])
      if (auto c = r.choice(video["codec"], "video.codec", kCodecs)) v.codec = *c;
    if (video["profile"])
      if (auto c = r.text(video["profile"], "video.profile", false)) v.profile = *c;
    if (video["pix_fmt"])
      if (auto c = r.choice(video["pix_fmt"], "video.pix_fmt", kPixFmts)) v.pix_fmt = *c;
    if (video["rate_control"])
      if (auto c = r.choice(video["rate_control"], "video.rate_control", {"crf", "bitrate"})) v.rate_control = *c;
    if (video["crf"])
      if (auto c = r.integer(video["crf"], "video.crf", 0, 63)) v.crf = static_cast<int>(*c);
    for (auto [key, dst] : {std::pair{"bitrate", &v.bitrate}, {"maxrate", &v.maxrate}, {"bufsize", &v.bufsize}})
      if (video[key])
        if (auto c = r.integer(video[key], std::string("video.") + key, 0, 10'000'000'000LL)) *dst = *c;
    if (v.rate_control == "bitrate" && v.bitrate <= 0)
      r.error(video["rate_control"], "video.bitrate",
              "expected a positive bitrate (bits/s) with rate_control: bitrate, got " +
                  (video["bitrate"] ? detail::describe(video["bitrate"]) : std::string("nothing")));
    if (video["gop"])
      if (auto c = r.integer(video["gop"], "video.gop", 1, 1000)) v.gop = static_cast<int>(*c);
    if (video["closed_gop"])
      if (auto c = r.boolean(video["closed_gop"], "video.closed_gop")) v.closed_gop = *c;
    if (video["b_frames"])
      if (auto c = r.integer(video["b_frames"], "video.b_frames", 0, 16)) v.b_frames = static_cast<int>(*c);
    if (video["encoder_preset"])
      if (auto c = r.text(video["encoder_preset"], "video.encoder_preset", false)) v.encoder_preset = *c;
    if (video["color"])
      if (auto c = r.choice(video["color"], "video.color", {"bt709"})) v.color = *c;
    if (video["range"])
      if (auto c = r.choice(video["range"], "video.range", {"tv", "pc"})) v.range = *c;
    if (const YAML::Node opts = video["options"]) {
      if (r.require_map(opts, "video.options", "codec option names to values")) {
        for (auto it = opts.begin(); it != opts.end(); ++it) {
          const std::string key = it->first.Scalar();
          if (auto val = r.text(it->second, "video.options." + key)) v.options[key] = *val;
        }
      }
    }
    if (auto s = read_source(r, video, "video")) p.video_source = *s;
  }

  // audio
  if (const YAML::Node audio = root["audio"]) {
    if (r.require_map(audio, "audio", "enabled, codec, sample_rate, channels, bitrate, source")) {
      auto& a = p.audio;
      r.check_keys(audio, "audio", {"enabled", "codec", "sample_rate", "channels", "bitrate", "source"});
      if (audio["enabled"])
        if (auto c = r.boolean(audio["enabled"], "audio.enabled")) a.enabled = *c;
      if (audio["codec"])
        if (auto c = r.choice(audio["codec"], "audio.codec", kAudioCodecs)) a.codec = *c;
      if (audio["sample_rate"])
        if (auto c = r.choice(audio["sample_rate"], "audio.sample_rate", {"44100", "48000", "96000"}))
          a.sample_rate = std::stoi(*c);
      if (audio["channels"])
        if (auto c = r.integer(audio["channels"], "audio.channels", 1, 8)) a.channels = static_cast<int>(*c);
      if (audio["bitrate"])
        if (auto c = r.integer(audio["bitrate"], "audio.bitrate", 0, 10'000'000)) a.bitrate = *c;
      if (auto s = read_source(r, audio, "audio")) p.audio_source = *s;
    }
  }

  if (!root["container"]) r.error(root, "container", "expected mp4, mov, mkv or webm, got nothing");
  if (root["container"])
    if (auto c = r.choice(root["container"], "container", kContainers)) p.container = *c;
  if (root["faststart"])
    if (auto c = r.boolean(root["faststart"], "faststart")) p.faststart = *c;
  if (!container_accepts(p.container, p.video.codec))
    r.error(root["container"], "container",
            "expected a container that can carry " + p.video.codec + ", got " + p.container);
  if (p.audio.enabled && !container_accepts(p.container, p.audio.codec))
    r.error(root["container"], "container",
            "expected a container that can carry " + p.audio.codec + " audio, got " + p.container);

  // max_duration: seconds, or {seconds, source}
  if (const YAML::Node md = root["max_duration"]) {
    if (md.IsMap()) {
      r.check_keys(md, "max_duration", {"seconds", "source"});
      if (!md["seconds"]) r.error(md, "max_duration.seconds", "expected a number of seconds, got nothing");
      if (md["seconds"])
        if (auto c = r.number(md["seconds"], "max_duration.seconds", 0, 1e7)) p.max_duration = *c;
      if (auto s = read_source(r, md, "max_duration")) p.max_duration_source = *s;
    } else if (auto c = r.number(md, "max_duration", 0, 1e7)) {
      p.max_duration = *c;
    }
  }

  if (const YAML::Node sz = root["safe_zones"]) {
    if (r.require_map(sz, "safe_zones", "action_safe, title_safe, platform_ui")) {
      r.check_keys(sz, "safe_zones", {"action_safe", "title_safe", "platform_ui"});
      auto& z = p.safe_zones;
      if (sz["action_safe"])
        read_insets(r, sz["action_safe"], "safe_zones.action_safe", z.action_safe, z.action_safe_source);
      if (sz["title_safe"])
        read_insets(r, sz["title_safe"], "safe_zones.title_safe", z.title_safe, z.title_safe_source);
      if (sz["platform_ui"])
        read_insets(r, sz["platform_ui"], "safe_zones.platform_ui", z.platform_ui, z.platform_ui_source);
      std::vector<std::string> parts;
      for (const std::string* s : {&z.action_safe_source, &z.title_safe_source, &z.platform_ui_source})
        if (!s->empty() && std::find(parts.begin(), parts.end(), *s) == parts.end()) parts.push_back(*s);
      z.source.clear();
      for (const auto& s : parts) z.source += (z.source.empty() ? "" : "; ") + s;
    }
  }
  p.source_file = file;
}

std::vector<std::filesystem::path> yaml_files_in(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const auto ext = e.path().extension();
    if ((ext == ".yaml" || ext == ".yml") && e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::optional<Preset> load_preset_into(const std::filesystem::path& file, Diagnostics& sink, int index) {
  Reader r(sink, file.string(), index);
  auto root = detail::load_yaml_file(file, r);
  if (!root) return std::nullopt;
  Preset p;
  read_preset(r, *root, file, p);
  return p;
}

}  // namespace

std::filesystem::path builtin_preset_dir() {
  if (const char* env = std::getenv("CLIPGEN_PRESET_PATH"); env && *env) return env;
  return CLIPGEN_PRESET_DIR;
}

std::filesystem::path builtin_model_dir() {
  if (const char* env = std::getenv("CLIPGEN_BUILTIN_MODELS"); env && *env) return env;
  return CLIPGEN_BUILTIN_MODEL_DIR;
}

std::filesystem::path builtin_keyframe_model() { return builtin_model_dir() / "clipgen-tiny"; }

Preset load_preset_file(const std::filesystem::path& file) {
  Diagnostics sink;
  auto p = load_preset_into(file, sink, 0);
  sink.throw_if_any();
  return *p;
}

PresetRegistry PresetRegistry::load(const std::vector<std::filesystem::path>& extra_dirs) {
  PresetRegistry reg;
  Diagnostics sink;
  std::vector<std::filesystem::path> dirs{builtin_preset_dir()};
  dirs.insert(dirs.end(), extra_dirs.begin(), extra_dirs.end());
  int index = 0;
  for (size_t i = 0; i < dirs.size(); ++i) {
    const auto& dir = dirs[i];
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      Reader r(sink, dir.string(), index++);
      r.error(YAML::Mark::null_mark(), "",
              i == 0 ? "expected the built-in preset folder, got no such folder (set CLIPGEN_PRESET_PATH to it)"
                     : "expected a preset folder, got no such folder");
      continue;
    }
    for (const auto& f : yaml_files_in(dir))
      if (auto p = load_preset_into(f, sink, index++)) reg.add(std::move(*p));
  }
  sink.throw_if_any();
  return reg;
}

const Preset* PresetRegistry::find(const std::string& name) const {
  auto it = presets_.find(name);
  return it == presets_.end() ? nullptr : &it->second;
}

const Preset& PresetRegistry::get(const std::string& name) const {
  if (const Preset* p = find(name)) return *p;
  throw ConfigError("unknown preset '" + name + "'" + did_you_mean(name, names()));
}

std::vector<std::string> PresetRegistry::names() const {
  std::vector<std::string> v;
  for (const auto& [k, _] : presets_) v.push_back(k);
  return v;
}

}  // namespace clipgen::configs
