// Delivery presets: raster, frame rate, codec, rate control, GOP, container, audio, maximum duration
// and safe zones. Presets are data (configs/presets/*.yaml, plus user preset files); this is their
// typed form. yaml-cpp never appears in this header.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace clipgen::configs {

struct Rational {
  int num = 30, den = 1;
  double value() const { return static_cast<double>(num) / den; }
  bool operator==(const Rational&) const = default;
};

// A rectangle given as fractions of the frame (0..1) measured from each edge.
struct Insets {
  double top = 0, bottom = 0, left = 0, right = 0;
  bool operator==(const Insets&) const = default;
};

struct SafeZones {
  Insets action_safe;            // keep action inside
  Insets title_safe;             // keep titles/text inside
  Insets platform_ui;            // covered by the platform's UI (captions, buttons); empty for film
  std::string source;            // where the figures come from (URL/document + date)
  // Added: where each zone's figures come from (the `source:` of each zone in the preset file); `source`
  // above joins the distinct ones with "; ".
  std::string action_safe_source, title_safe_source, platform_ui_source;
};

struct VideoSettings {
  std::string codec = "libx264";   // libx264 | libx265 | prores_ks | libvpx-vp9 | libsvtav1
  std::string profile = "high";    // codec profile name as libav spells it (high, main, main10, hq, ...)
  std::string pix_fmt = "yuv420p"; // yuv420p | yuv420p10le | yuv422p10le | ...
  std::string rate_control = "crf";  // crf | bitrate
  int crf = 18;                      // when rate_control == crf (ProRes: ignored)
  int64_t bitrate = 0;               // bits/s when rate_control == bitrate
  int64_t maxrate = 0, bufsize = 0;  // optional VBV caps (0 = unset)
  int gop = 15;                      // keyframe interval in frames
  bool closed_gop = true;
  int b_frames = 2;
  std::string encoder_preset = "medium";  // x264/x265 preset, svt-av1 preset number as text, vp9 deadline
  std::map<std::string, std::string> options;  // extra private codec options (av_opt_set)
  // Colour: BT.709 primaries/transfer/matrix, limited ("tv") or full ("pc") range.
  std::string color = "bt709";
  std::string range = "tv";
};

struct AudioSettings {
  bool enabled = true;         // an audio track is written when the shot has an audio bed
  std::string codec = "aac";   // aac | pcm_s24le (ProRes masters) | libopus (webm)
  int sample_rate = 48000;
  int channels = 2;
  int64_t bitrate = 192000;
};

struct Preset {
  std::string name;
  std::string description;
  int width = 1920, height = 1080;
  Rational fps{30, 1};
  VideoSettings video;
  AudioSettings audio;
  std::string container = "mp4";   // mp4 | mov | mkv | webm (also the output file extension)
  bool faststart = true;           // moov atom before mdat (mp4/mov)
  double max_duration = 0;         // seconds; 0 = no limit
  SafeZones safe_zones;
  std::filesystem::path source_file;  // the preset file it was read from
  // Added: where the figures come from (the `source:` field of each section of the preset file).
  std::string raster_source;        // raster and fps
  std::string video_source;         // codec, profile, pix_fmt, rate control, GOP
  std::string audio_source;
  std::string max_duration_source;
};

// Built-in presets (configs/presets/*.yaml) plus every *.yaml in `extra_dirs` (user presets; a user
// preset with the name of a built-in one replaces it). Throws ConfigError naming file:line:col.
class PresetRegistry {
public:
  static PresetRegistry load(const std::vector<std::filesystem::path>& extra_dirs = {});
  // Throws ConfigError("unknown preset 'x' (did you mean 'y'?)") when absent.
  const Preset& get(const std::string& name) const;
  const Preset* find(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted
  void add(Preset p) { presets_[p.name] = std::move(p); }

private:
  std::map<std::string, Preset> presets_;
};

// The folder holding the built-in preset files (installed data, or the source tree in a build).
std::filesystem::path builtin_preset_dir();
// Where the built-in models live (models/builtin in the source tree; CLIPGEN_BUILTIN_MODELS overrides).
std::filesystem::path builtin_model_dir();
// The built-in keyframe model's diffusers folder (builtin_model_dir()/clipgen-tiny).
std::filesystem::path builtin_keyframe_model();

// Reads one preset file (a mapping with the preset's fields). Throws ConfigError.
Preset load_preset_file(const std::filesystem::path& file);

}  // namespace clipgen::configs
