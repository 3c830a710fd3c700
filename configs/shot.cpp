// Shot files (schema version 1, docs/shot-schema.md) → configs::ShotList. Every problem of every file is
// collected (detail::Diagnostics) and thrown once; nothing here allocates more than the parsed text.
#include "configs/shot.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "configs/suggest.h"
#include "configs/yaml_reader.h"
#include "scenes/caption.h"
#include "core/error.h"
#include "core/fs.h"

namespace clipgen::configs {
namespace fs = std::filesystem;
using namespace detail;

namespace {

const std::vector<std::string> kShotKeys = {
    "id",        "title",  "preset",  "duration", "frames", "fps",  "seed",   "prompt", "negative_prompt",
    "keyframes", "motion", "sampler", "models",   "size",   "post", "output", "audio", "precision"};
const std::vector<std::string> kPrecisions = {"auto", "fp32", "bf16", "fp16"};
const std::vector<std::string> kKeyframeKeys = {"at", "prompt", "negative_prompt", "image", "strength"};
const std::vector<std::string> kMotionKeys = {"motion_bucket_id", "fps",          "noise_aug_strength", "decode_chunk",
                                              "num_frames",       "overlap",      "transition_frames",  "continuity",
                                              "min_guidance",     "max_guidance", "generation_fps",     "steps"};
const std::vector<std::string> kSamplerKeys = {"name", "steps", "guidance", "sigma_schedule", "clip_skip"};
const std::vector<std::string> kSamplerNames = {"ddim", "pndm", "euler", "euler_ancestral", "dpmpp_2m", "lcm"};
const std::vector<std::string> kModelRefKeys = {"path", "original_config", "settings"};
const std::vector<std::string> kModelSettingsKeys = {"prediction_type", "unet", "vae", "text_encoder", "text_encoder_2"};
const std::vector<std::string> kUnetSettingKeys = {"heads",    "head_channels",           "norm_groups",
                                                   "upcast_attention", "addition_time_embed_dim", "sample_size"};
const std::vector<std::string> kVaeSettingKeys = {"scaling_factor", "norm_groups", "sample_size"};
const std::vector<std::string> kTextEncoderSettingKeys = {"heads", "activation", "layers"};
const std::vector<std::string> kTextEncoder2SettingKeys = {"heads", "activation"};
// What CLIP text encoders accept as hidden_act (models/clip_encoder.cpp).
const std::vector<std::string> kClipActivations = {"quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu"};
const std::vector<std::string> kPickleExts = {".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle"};
constexpr double kMaxFps = 240;
const char* kDefaultPreset = "hd";

std::vector<std::string> with(std::vector<std::string> v, std::initializer_list<const char*> more) {
  for (const char* m : more) v.emplace_back(m);
  return v;
}
std::vector<std::string> without(std::vector<std::string> v, const std::string& key) {
  v.erase(std::remove(v.begin(), v.end(), key), v.end());
  return v;
}

// A value looked up through the layers of a shot: the shot's own mapping first, then `defaults:`.
struct Found {
  YAML::Node node;
  std::string path;
  bool found = false;
  explicit operator bool() const { return found; }
};

struct Layers {
  std::vector<std::pair<YAML::Node, std::string>> items;  // (mapping, its key path)

  Found get(const std::string& key) const {
    for (const auto& [n, p] : items) {
      const YAML::Node& m = n;
      if (is_map(m) && m[key]) return {m[key], join_path(p, key), true};
    }
    return {};
  }
  // The mapping `key` of every layer that has one (mapping-valued settings merge key by key).
  Layers sub(const std::string& key, Reader& r, const std::string& what, const std::vector<std::string>& keys) const {
    Layers out;
    for (const auto& [n, p] : items) {
      const YAML::Node& m = n;
      if (!is_map(m) || !m[key]) continue;
      const YAML::Node c = m[key];
      const std::string cp = join_path(p, key);
      if (!r.require_map(c, cp, what)) continue;
      r.check_keys(c, cp, keys);
      out.items.emplace_back(c, cp);
    }
    return out;
  }
};

struct Context {
  Reader& r;
  const PresetRegistry& presets;
  const LoadOptions& options;
  fs::path dir;       // the YAML file's folder (absolute)
  fs::path out_root;  // absolute, canonical where it exists
  std::vector<std::string>& warnings;
};

// Where a shot's id and output were written (for duplicate checks across files).
struct Origin {
  std::string id_at, output_at;  // "file:line:col"
  YAML::Mark id_mark, output_mark;
  std::string id_path, output_path;
  Reader* reader = nullptr;
};

std::string at_string(const Reader& r, const YAML::Mark& m) {
  auto d = r.located(m, "");
  std::string s = d.located();
  return s.substr(0, s.size() - 2);  // drop ": "
}

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 64 || !std::isalnum(static_cast<unsigned char>(id[0]))) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::optional<double> plain_number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v) || std::isspace(static_cast<unsigned char>(s[0])))
    return std::nullopt;
  if (s.find_first_of("xXnNiI") != std::string::npos) return std::nullopt;  // hex, nan, inf
  return v;
}

// "4", "4.5", "4.5s" → seconds (> 0).
std::optional<double> read_seconds(Reader& r, const YAML::Node& n, const std::string& path) {
  const char* what = "a positive duration in seconds (4, 2.5 or 2.5s)";
  std::optional<double> v;
  if (is_scalar(n)) {
    std::string s = n.Scalar();
    if (!s.empty() && s.back() == 's')
      s.pop_back();
    else if (!is_plain_scalar(n))
      s.clear();
    v = plain_number(s);
  }
  if (!v || *v <= 0) {
    r.expected(n, path, what);
    return std::nullopt;
  }
  return v;
}

std::string seconds_text(double s) { return format_number(std::round(s * 1000) / 1000) + "s"; }

fs::path resolve_path(const fs::path& dir, const std::string& spec) {
  fs::path p(spec);
  return (p.is_absolute() ? p : dir / p).lexically_normal();
}

std::optional<fs::path> read_existing_file(Context& c, const Found& f, const char* what) {
  auto spec = c.r.text(f.node, f.path, false);
  if (!spec) return std::nullopt;
  fs::path p = resolve_path(c.dir, *spec);
  if (c.options.check_files) {
    std::error_code ec;
    if (!fs::exists(p, ec)) {
      c.r.expected(f.node, f.path, std::string("an existing ") + what, " (no such file: " + p.string() + ")");
      return std::nullopt;
    }
    if (!fs::is_regular_file(p, ec)) {
      c.r.expected(f.node, f.path, std::string("an existing ") + what, " (not a regular file: " + p.string() + ")");
      return std::nullopt;
    }
  }
  return p;
}

// A file with a pickle extension (`ext`, lower case) where weights go: an error saying why and how to convert
// it (`other_way`: a further conversion that fits this key); true when refused.
bool refused_pickle(Context& c, const Found& f, const char* what, const std::string& ext,
                    const std::string& other_way) {
  if (std::find(kPickleExts.begin(), kPickleExts.end(), ext) == kPickleExts.end()) return false;
  c.r.expected(f.node, f.path, what,
               " (" + ext +
                   " files are Python pickles, which can run code when loaded, so clipgen refuses them; "
                   "convert it once with safetensors.torch.save_file(torch.load(f)[\"state_dict\"], out)" +
                   other_way + ")");
  return true;
}

ModelRef read_model_path(Context& c, const Found& f, bool keyframe) {
  ModelRef m;
  auto spec = c.r.text(f.node, f.path, false);
  if (!spec || *spec == "builtin") return m;
  m.spec = *spec;
  if (is_plain_scalar(f.node) && *spec == (keyframe ? "procedural" : "none")) {
    m.kind = keyframe ? ModelRef::Kind::Procedural : ModelRef::Kind::None;
    return m;
  }
  const char* what = keyframe ? "'builtin', 'procedural', a diffusers folder or a .safetensors file"
                              : "'builtin', 'none', a diffusers folder or a .safetensors file";
  const fs::path p = resolve_path(c.dir, *spec);
  const std::string ext = lower(p.extension().string());
  if (refused_pickle(c, f, what, ext,
                     " or diffusers' from_single_file(...).save_pretrained(folder, safe_serialization=True)")) {
    return m;
  }
  std::error_code ec;
  if (!c.options.check_files) {
    m.kind = ext == ".safetensors" ? ModelRef::Kind::SingleFile : ModelRef::Kind::DiffusersFolder;
    m.path = p;
    return m;
  }
  if (!fs::exists(p, ec)) {
    c.r.expected(f.node, f.path, what, " (no such file or folder: " + p.string() + ")");
  } else if (fs::is_directory(p, ec)) {
    if (!fs::exists(p / "model_index.json", ec) && !fs::exists(p / "config.json", ec))
      c.r.expected(f.node, f.path, what,
                   " (the folder " + p.string() + " has neither model_index.json nor config.json)");
    m.kind = ModelRef::Kind::DiffusersFolder;
    m.path = p;
  } else if (ext != ".safetensors") {
    c.r.expected(f.node, f.path, what, " (not a .safetensors file: " + p.string() + ")");
  } else {
    m.kind = ModelRef::Kind::SingleFile;
    m.path = p;
  }
  return m;
}

// settings: what a single file's shapes cannot tell (ModelSettings; docs/shot-schema.md#models).
void read_model_settings(Context& c, const YAML::Node& node, const std::string& path, ModelSettings& s) {
  Reader& r = c.r;
  if (!r.require_map(node, path, "prediction_type, unet, vae, text_encoder, text_encoder_2")) return;
  r.check_keys(node, path, kModelSettingsKeys);
  const YAML::Node& n = node;
  if (n["prediction_type"])
    if (auto v = r.choice(n["prediction_type"], join_path(path, "prediction_type"), {"epsilon", "v_prediction", "sample"}))
      s.prediction_type = *v;
  // One component's group: a mapping of the given keys.
  auto group = [&](const char* name, const std::vector<std::string>& keys, const char* what) -> std::optional<YAML::Node> {
    if (!n[name]) return std::nullopt;
    const YAML::Node g = n[name];
    const std::string gp = join_path(path, name);
    if (!r.require_map(g, gp, what)) return std::nullopt;
    r.check_keys(g, gp, keys);
    return g;
  };
  auto integer = [&](const YAML::Node& g, const std::string& gp, const char* key, std::optional<int>& dst, int64_t lo,
                     int64_t hi) {
    if (g[key])
      if (auto v = r.integer(g[key], join_path(gp, key), lo, hi)) dst = static_cast<int>(*v);
  };
  auto activation = [&](const YAML::Node& g, const std::string& gp, std::optional<std::string>& dst) {
    if (g["activation"])
      if (auto v = r.choice(g["activation"], join_path(gp, "activation"), kClipActivations)) dst = *v;
  };
  if (auto g = group("unet", kUnetSettingKeys, "heads or head_channels, norm_groups, upcast_attention, ...")) {
    const YAML::Node& u = *g;
    const std::string gp = join_path(path, "unet");
    integer(u, gp, "heads", s.unet_heads, 1, 1024);
    integer(u, gp, "head_channels", s.unet_head_channels, 1, 4096);
    if (u["heads"] && u["head_channels"])
      r.error(u["head_channels"], join_path(gp, "head_channels"),
              "expected either heads or head_channels, got both (heads at line " +
                  std::to_string(mark_of(u["heads"]).line + 1) + ")");
    integer(u, gp, "norm_groups", s.unet_norm_groups, 1, 1024);
    if (u["upcast_attention"])
      if (auto v = r.boolean(u["upcast_attention"], join_path(gp, "upcast_attention"))) s.unet_upcast_attention = *v;
    integer(u, gp, "addition_time_embed_dim", s.unet_addition_time_embed_dim, 1, 65536);
    integer(u, gp, "sample_size", s.unet_sample_size, 1, Limits::max_dimension / 8);
  }
  if (auto g = group("vae", kVaeSettingKeys, "scaling_factor, norm_groups, sample_size")) {
    const YAML::Node& v = *g;
    const std::string gp = join_path(path, "vae");
    if (v["scaling_factor"])
      if (auto x = r.number(v["scaling_factor"], join_path(gp, "scaling_factor"), 0, 100, true)) s.vae_scaling_factor = *x;
    integer(v, gp, "norm_groups", s.vae_norm_groups, 1, 1024);
    integer(v, gp, "sample_size", s.vae_sample_size, 8, Limits::max_dimension);
  }
  if (auto g = group("text_encoder", kTextEncoderSettingKeys, "heads, activation, layers")) {
    const std::string gp = join_path(path, "text_encoder");
    integer(*g, gp, "heads", s.text_encoder_heads, 1, 1024);
    activation(*g, gp, s.text_encoder_activation);
    integer(*g, gp, "layers", s.text_encoder_layers, 1, 1024);
  }
  if (auto g = group("text_encoder_2", kTextEncoder2SettingKeys, "heads, activation")) {
    const std::string gp = join_path(path, "text_encoder_2");
    integer(*g, gp, "heads", s.text_encoder_2_heads, 1, 1024);
    activation(*g, gp, s.text_encoder_2_activation);
  }
}

// A model reference: a path ('builtin', a diffusers folder, a .safetensors file) or a mapping
// {path, original_config, settings}; original_config and settings only for a single file named as the
// keyframe model (`keyframe`).
ModelRef read_model(Context& c, const Found& f, bool keyframe) {
  Reader& r = c.r;
  if (!is_map(f.node)) return read_model_path(c, f, keyframe);
  r.check_keys(f.node, f.path, kModelRefKeys);
  const YAML::Node& n = f.node;
  ModelRef m;
  bool path_ok = false;
  if (!n["path"]) {
    r.error(f.node, join_path(f.path, "path"), "expected 'builtin', a diffusers folder or a .safetensors file, got nothing");
  } else {
    const Found p{n["path"], join_path(f.path, "path"), true};
    m = read_model_path(c, p, keyframe);
    path_ok = m.has_weights() || (is_scalar(p.node) && (p.node.Scalar() == "builtin" || p.node.Scalar() == "procedural" ||
                                                        p.node.Scalar() == "none"));
  }
  // original_config and settings describe a single file; anything else already says all of it.
  auto single_file_only = [&](const char* key) {
    const std::string kp = join_path(f.path, key);
    if (!keyframe) {
      r.error(n[key], kp,
              std::string("expected ") + key +
                  " only with the keyframe model (single-file Stable Diffusion checkpoints), got " + key +
                  " with the temporal model");
      return false;
    }
    if (!path_ok || m.kind == ModelRef::Kind::SingleFile) return true;  // (a bad path: still check the rest)
    r.error(n[key], kp,
            std::string("expected ") + key + " only with a single .safetensors file, got " + key + " with " +
                (!m.has_weights()
                     ? "'" + m.spec + "'"
                     : "a diffusers folder (its config.json files describe the model; edit those instead)"));
    return false;
  };
  if (n["original_config"] && single_file_only("original_config")) {
    const Found oc{n["original_config"], join_path(f.path, "original_config"), true};
    if (is_plain_scalar(oc.node) && oc.node.Scalar() == "none")
      m.ignore_original_config = true;
    else if (auto p = read_existing_file(c, oc, "LDM/SGM yaml file (or none)"))
      m.original_config = *p;
  }
  if (n["settings"] && single_file_only("settings"))
    read_model_settings(c, n["settings"], join_path(f.path, "settings"), m.settings);
  return m;
}

// models.vae: the VAE that replaces the keyframe model's own (docs/shot-schema.md#models) — a diffusers
// AutoencoderKL folder, or a .safetensors file (a full LDM/SGM checkpoint, of which only the VAE is used,
// or a standalone VAE file); `none`: the keyframe model's own VAE. What the file holds is checked when the
// model is loaded (stages/keyframe_vae.h).
std::optional<ModelRef> read_vae(Context& c, const Found& f) {
  const char* what = "a diffusers AutoencoderKL folder, a .safetensors file or none";
  if (!is_scalar(f.node)) {
    c.r.expected(f.node, f.path, what);
    return std::nullopt;
  }
  auto spec = c.r.text(f.node, f.path, false);
  if (!spec) return std::nullopt;
  if (*spec == "none" && is_plain_scalar(f.node)) return std::nullopt;
  ModelRef m;
  m.spec = *spec;
  const fs::path p = resolve_path(c.dir, *spec);
  const std::string ext = lower(p.extension().string());
  if (refused_pickle(c, f, what, ext, "")) {
    return std::nullopt;
  }
  m.kind = ext == ".safetensors" ? ModelRef::Kind::SingleFile : ModelRef::Kind::DiffusersFolder;
  m.path = p;
  if (!c.options.check_files) return m;
  std::error_code ec;
  if (!fs::exists(p, ec)) {
    c.r.expected(f.node, f.path, what, " (no such file or folder: " + p.string() + ")");
    return std::nullopt;
  }
  if (fs::is_directory(p, ec)) {
    m.kind = ModelRef::Kind::DiffusersFolder;
    if (!fs::exists(p / "config.json", ec)) {
      c.r.expected(f.node, f.path, what,
                   fs::exists(p / "model_index.json", ec)
                       ? " (a diffusers pipeline folder: name its VAE folder, '" + (fs::path(*spec) / "vae").string() + "')"
                       : " (the folder has no config.json)");
      return std::nullopt;
    }
    std::string cls;
    try {
      cls = nlohmann::json::parse(read_file(p / "config.json")).value("_class_name", std::string());
    } catch (const std::exception&) {
      cls = "?";
    }
    if (cls != "AutoencoderKL") {
      c.r.expected(f.node, f.path, what,
                   " (its config.json describes " + (cls.empty() || cls == "?" ? std::string("no model class") : "a " + cls) +
                       ", not an AutoencoderKL)");
      return std::nullopt;
    }
    return m;
  }
  if (ext != ".safetensors") {
    c.r.expected(f.node, f.path, what, " (not a .safetensors file: " + p.string() + ")");
    return std::nullopt;
  }
  return m;
}

// A keyframe's `at:` — seconds (2.5, "2.5s") or a frame number ("f60") → frame index at `fps`.
std::optional<int64_t> read_at(Reader& r, const YAML::Node& n, const std::string& path, Rational fps) {
  const char* what = "a time in seconds (2.5 or 2.5s) or a frame (f60)";
  if (is_scalar(n)) {
    const std::string s = n.Scalar();
    if (s.size() > 1 && s[0] == 'f') {
      const std::string digits = s.substr(1);
      if (std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) &&
          digits.size() <= 12)
        return std::stoll(digits);
    } else {
      std::string t = s;
      if (!t.empty() && t.back() == 's')
        t.pop_back();
      else if (!is_plain_scalar(n))
        t.clear();
      if (auto v = plain_number(t); v && *v >= 0 && *v < 1e9) return std::llround(*v * fps.value());
    }
  }
  r.expected(n, path, what);
  return std::nullopt;
}

std::string frame_and_time(int64_t frame, Rational fps) {
  return seconds_text(frame / fps.value()) + ", frame " + std::to_string(frame);
}

struct Resolved {
  Shot shot;
  Origin origin;
  bool ok_output = false;
};

// `negative_prompt: ~` (or nothing after the colon) is "no negative prompt", which a keyframe can use to
// drop the shot's; "" is the empty text. They differ for SDXL models (see Keyframe::negative_prompt).
std::optional<std::string> read_negative_prompt(Reader& r, const YAML::Node& node, const std::string& path) {
  if (node.IsNull()) return std::nullopt;
  return r.text(node, path);
}

void read_keyframes(Context& c, const Layers& L, const YAML::Node& shot_node, const std::string& prefix, Shot& s,
                    bool length_ok) {
  Reader& r = c.r;
  const Found kf = L.get("keyframes");
  auto add_default_first = [&](int line) {
    Keyframe k;
    k.prompt = s.prompt;
    k.negative_prompt = s.negative_prompt;
    k.line = line;
    s.keyframes.insert(s.keyframes.begin(), k);
  };
  if (!kf) {
    if (s.prompt.empty()) {
      const Found p = L.get("prompt");
      if (p)
        r.expected(p.node, p.path, "text (what the shot shows)");
      else
        r.error(shot_node, join_path(prefix, "prompt"), "expected text (what the shot shows), got nothing");
    }
    add_default_first(mark_of(shot_node).line + 1);
    return;
  }
  if (!is_seq(kf.node) || kf.node.size() == 0) {
    r.expected(kf.node, kf.path, "a list of keyframes (each with at, prompt, image, strength)");
    return;
  }
  int64_t prev = -1;
  for (size_t i = 0; i < kf.node.size(); ++i) {
    const YAML::Node item = kf.node[i];
    const std::string ip = kf.path + "[" + std::to_string(i) + "]";
    if (!r.require_map(item, ip, "at, prompt, negative_prompt, image, strength")) continue;
    r.check_keys(item, ip, kKeyframeKeys);
    Keyframe k;
    k.line = mark_of(item).line + 1;
    bool have_at = false;
    if (item["at"]) {
      if (auto f = read_at(r, item["at"], ip + ".at", s.fps)) k.frame = *f, have_at = true;
    } else if (i == 0) {
      have_at = true;  // the first keyframe defaults to the start
    } else {
      r.error(item, ip + ".at", "expected a time in seconds (2.5 or 2.5s) or a frame (f60), got nothing");
    }
    k.at_seconds = k.frame / s.fps.value();
    if (have_at && length_ok && k.frame >= s.frames) {
      r.expected(item["at"], ip + ".at", "a time within the shot (before " + frame_and_time(s.frames, s.fps) + ")",
                 " (frame " + std::to_string(k.frame) + ")");
      have_at = false;
    }
    if (have_at && prev >= 0 && k.frame <= prev) {
      r.expected(item["at"], ip + ".at", "a time after the previous keyframe (" + frame_and_time(prev, s.fps) + ")",
                 " (frame " + std::to_string(k.frame) + ")");
    }
    if (have_at) prev = std::max(prev, k.frame);
    if (item["prompt"])
      if (auto t = r.text(item["prompt"], ip + ".prompt")) k.prompt = *t;
    if (k.prompt.empty()) k.prompt = s.prompt;
    if (item["negative_prompt"]) {
      k.negative_prompt = read_negative_prompt(r, item["negative_prompt"], ip + ".negative_prompt");
    } else {
      k.negative_prompt = s.negative_prompt;
    }
    if (item["image"]) k.image = read_existing_file(c, Found{item["image"], ip + ".image", true}, "image file");
    if (item["strength"]) {
      if (auto v = r.number(item["strength"], ip + ".strength", 0, 1, true)) k.strength = *v;
      if (!item["image"])
        r.error(item["strength"], ip + ".strength",
                "expected together with 'image' (strength is how far the init image may change), got strength "
                "without image");
    }
    if (k.prompt.empty() && !item["image"])
      r.error(item["prompt"] ? mark_of(item["prompt"]) : mark_of(item), ip + ".prompt",
              "expected text (the shot has no prompt to fall back on), got nothing");
    if (i == 0 && have_at && k.frame > 0) {
      if (s.prompt.empty())
        r.expected(item["at"], ip + ".at", "0 for the first keyframe (the shot has no prompt for the time before it)");
      else
        add_default_first(mark_of(shot_node).line + 1);
    }
    s.keyframes.push_back(std::move(k));
  }
}

// Whether the shot (or its defaults) names a temporal model other than builtin: the segment rules
// (docs/temporal.md) only constrain motion settings for a video model.
bool names_video_model(const Layers& L) {
  for (const auto& [n, p] : L.items) {
    const YAML::Node& m = n;
    if (!is_map(m) || !m["models"] || !is_map(m["models"]) || !m["models"]["temporal"]) continue;
    const YAML::Node t = m["models"]["temporal"];
    const YAML::Node v = is_map(t) ? t["path"] : t;
    return !(v && is_scalar(v) && (v.Scalar() == "builtin" || v.Scalar() == "none"));
  }
  return false;
}

void read_motion(Context& c, const Layers& L, Motion& m) {
  Reader& r = c.r;
  const Layers M = L.sub("motion", r, "temporal settings: motion_bucket_id, fps, noise_aug_strength, ...", kMotionKeys);
  auto integer = [&](const char* key, int& dst, int64_t lo, int64_t hi) {
    if (const Found f = M.get(key))
      if (auto v = r.integer(f.node, f.path, lo, hi)) dst = static_cast<int>(*v);
  };
  auto number = [&](const char* key, double& dst, double lo, double hi) {
    if (const Found f = M.get(key))
      if (auto v = r.number(f.node, f.path, lo, hi)) dst = *v;
  };
  integer("motion_bucket_id", m.motion_bucket_id, 0, 1023);
  integer("fps", m.fps_conditioning, 1, 120);
  number("noise_aug_strength", m.noise_aug_strength, 0, 1);
  integer("decode_chunk", m.decode_chunk, 1, 1024);
  integer("num_frames", m.num_frames, 2, 128);
  integer("overlap", m.overlap, 0, 127);
  integer("transition_frames", m.transition_frames, 0, 1024);
  number("continuity", m.continuity, 0, 1);
  number("min_guidance", m.min_guidance, 0, 30);
  number("max_guidance", m.max_guidance, 0, 30);
  integer("generation_fps", m.generation_fps, 1, static_cast<int64_t>(kMaxFps));
  integer("steps", m.steps, 1, Limits::max_steps);
  // With num_frames 0 (the model's own) these are checked when the model's count is known (plan).
  if (m.num_frames > 0 && m.overlap >= m.num_frames) {
    if (const Found f = M.get("overlap"))
      r.expected(f.node, f.path, "fewer frames than motion.num_frames (" + std::to_string(m.num_frames) + ")");
  } else if (const int need = m.overlap + m.transition_frames + std::max(m.overlap, m.transition_frames);
             m.num_frames > 0 && m.num_frames < need && names_video_model(L)) {
    // A segment must hold its own blend window and the next one's (docs/temporal.md).
    const Found f = M.get("num_frames") ? M.get("num_frames")
                    : M.get("transition_frames") ? M.get("transition_frames")
                                                 : M.get("overlap");
    if (f)
      r.error(f.node, f.path,
              "expected num_frames >= overlap + transition_frames + max(overlap, transition_frames) = " +
                  std::to_string(need) + ", got num_frames " + std::to_string(m.num_frames) + ", overlap " +
                  std::to_string(m.overlap) + ", transition_frames " + std::to_string(m.transition_frames));
  }
  if (m.min_guidance > m.max_guidance) {
    const Found f = M.get("min_guidance") ? M.get("min_guidance") : M.get("max_guidance");
    if (f)
      r.error(f.node, f.path,
              "expected min_guidance <= max_guidance, got " + format_number(m.min_guidance) + " > " +
                  format_number(m.max_guidance));
  }
}

void read_sampler(Context& c, const Layers& L, Sampler& s) {
  Reader& r = c.r;
  const Layers S = L.sub("sampler", r, "name, steps, guidance, sigma_schedule, clip_skip", kSamplerKeys);
  if (const Found f = S.get("name"))
    if (auto v = r.choice(f.node, f.path, kSamplerNames)) s.name = *v;
  if (const Found f = S.get("steps"))
    if (auto v = r.integer(f.node, f.path, 1, Limits::max_steps, "Limits::max_steps")) s.steps = static_cast<int>(*v);
  if (const Found f = S.get("guidance"))
    if (auto v = r.number(f.node, f.path, 0, 50)) s.guidance = *v, s.guidance_given = true;
  if (const Found f = S.get("sigma_schedule"))
    if (auto v = r.choice(f.node, f.path, {"default", "karras"})) s.sigma_schedule = *v;
  if (const Found f = S.get("clip_skip"))
    if (auto v = r.integer(f.node, f.path, 1, 12)) s.clip_skip = static_cast<int>(*v);
}

void read_size(Context& c, const Layers& L, const YAML::Node& shot_node, const std::string& prefix, Shot& s) {
  Reader& r = c.r;
  const Layers Z = L.sub("size", r, "the generation raster: width, height", {"width", "height"});
  if (Z.items.empty()) return;
  int dims[2] = {0, 0};
  const char* keys[2] = {"width", "height"};
  for (int i = 0; i < 2; ++i) {
    const Found f = Z.get(keys[i]);
    if (!f) {
      r.error(Z.items.front().first, join_path(Z.items.front().second, keys[i]),
              "expected a number of pixels (a multiple of 8), got nothing");
      continue;
    }
    auto v = r.integer(f.node, f.path, 64, Limits::max_dimension, "Limits::max_dimension");
    if (!v) continue;
    if (*v % 8 != 0) {
      r.expected(f.node, f.path, "a multiple of 8 (the VAE works in 8-pixel blocks)");
      continue;
    }
    dims[i] = static_cast<int>(*v);
  }
  (void)shot_node;
  (void)prefix;
  s.gen_width = dims[0];
  s.gen_height = dims[1];
}

void read_post(Context& c, const Layers& L, Post& p) {
  Reader& r = c.r;
  const Layers P = L.sub("post", r, "fit, retime", {"fit", "retime"});
  if (const Found f = P.get("fit"))
    if (auto v = r.choice(f.node, f.path, {"crop", "letterbox", "stretch"})) p.fit = *v;
  if (const Found f = P.get("retime"))
    if (auto v = r.choice(f.node, f.path, {"dup", "blend", "mci"})) p.retime = *v;
}

// output: relative to the output root; a name ending in '/' is a folder for "<id>.<ext>".
void read_output(Context& c, const Layers& L, const YAML::Node& shot_node, const std::string& prefix, Resolved& res) {
  Reader& r = c.r;
  Shot& s = res.shot;
  const std::string ext = s.preset.container;
  const Found f = L.get("output");
  std::string spec = s.id + "." + ext;
  if (f) {
    auto t = r.text(f.node, f.path, false);
    if (!t) return;
    spec = *t;
  }
  const std::string path = f ? f.path : join_path(prefix, "output");
  const YAML::Mark mark = f ? mark_of(f.node) : mark_of(shot_node);
  const std::string inside = "a path inside the output root (" + c.options.out_root.string() + ")";
  fs::path p(spec);
  fs::path full = p.is_absolute() ? p : c.out_root / p;
  const std::string last = p.filename().string();
  if (spec.back() == '/' || last == "." || last == "..")
    full /= s.id + "." + ext;
  else if (full.extension().empty())
    full += "." + ext;
  else if (full.extension() != "." + ext) {
    r.error(mark, path,
            "expected a file name ending in '." + ext + "' (preset '" + s.preset.name + "' writes " + ext + "), got '" +
                spec + "'");
    return;
  }
  full = full.lexically_normal();
  auto escapes = [&](const fs::path& q) {
    const fs::path rel = q.lexically_relative(c.out_root);
    return rel.empty() || *rel.begin() == ".." || rel == ".";
  };
  if (escapes(full)) {
    r.error(mark, path, "expected " + inside + ", got '" + spec + "'");
    return;
  }
  std::error_code ec;
  const fs::path canon = fs::weakly_canonical(full, ec);
  if (!ec && escapes(canon)) {
    r.error(mark, path, "expected " + inside + ", got '" + spec + "' (a symlink leads to " + canon.string() + ")");
    return;
  }
  s.output = ec ? full : canon;
  res.origin.output_mark = mark;
  res.origin.output_path = path;
  res.ok_output = true;
}

void add_warning(Context& c, const YAML::Mark& m, const std::string& path, const std::string& msg) {
  c.warnings.push_back(c.r.located(m, "warning: " + path + ": " + msg).located());
}

Resolved resolve_shot(Context& c, const YAML::Node& shot_node, const std::string& prefix, const YAML::Node* defaults,
                      const std::vector<std::string>& allowed) {
  Reader& r = c.r;
  Resolved res;
  Shot& s = res.shot;
  s.source_line = mark_of(shot_node).line + 1;
  r.check_keys(shot_node, prefix, allowed);
  Layers L;
  L.items.emplace_back(shot_node, prefix);
  if (defaults) L.items.emplace_back(*defaults, "defaults");

  // id: the shot's own (never from defaults)
  const std::string id_path = join_path(prefix, "id");
  if (!shot_node["id"]) {
    r.error(shot_node, id_path, "expected a shot id (letters, digits, '.', '_', '-'), got nothing");
  } else if (auto id = r.text(shot_node["id"], id_path)) {
    if (!valid_id(*id))
      r.expected(shot_node["id"], id_path,
                 "an id of letters, digits, '.', '_' or '-' (up to 64, starting with a letter or digit)");
    else
      s.id = *id;
    res.origin.id_mark = mark_of(shot_node["id"]);
    res.origin.id_path = id_path;
  }

  // preset (--preset wins)
  bool preset_ok = false;
  std::string preset_name = kDefaultPreset;
  const Found pf = L.get("preset");
  if (c.options.preset_override) {
    preset_name = *c.options.preset_override;
  } else if (pf) {
    if (auto t = r.text(pf.node, pf.path, false))
      preset_name = *t;
    else
      preset_name.clear();
  }
  if (const Preset* p = preset_name.empty() ? nullptr : c.presets.find(preset_name)) {
    s.preset = *p;
    preset_ok = true;
  } else if (!preset_name.empty()) {
    r.expected(pf.node, pf.path, "a preset name (see clipgen presets)", did_you_mean(preset_name, c.presets.names()));
  }
  if (preset_ok && (s.preset.width > Limits::max_dimension || s.preset.height > Limits::max_dimension))
    r.error(pf ? mark_of(pf.node) : mark_of(shot_node), pf ? pf.path : join_path(prefix, "preset"),
            "expected a raster of at most " + std::to_string(Limits::max_dimension) +
                " pixels (Limits::max_dimension), got " + std::to_string(s.preset.width) + "x" +
                std::to_string(s.preset.height));

  // fps
  s.fps = s.preset.fps;
  if (const Found f = L.get("fps"))
    if (auto v = r.rate(f.node, f.path, kMaxFps)) s.fps = *v;
  s.preset.fps = s.fps;  // the shot's rate overrides the preset's for delivery (post, encode)

  // length: duration XOR frames, from the first layer that sets either
  bool length_ok = false;
  Found length;
  for (const auto& [n, p] : L.items) {
    const YAML::Node& m = n;
    if (!is_map(m) || (!m["duration"] && !m["frames"])) continue;
    if (m["duration"] && m["frames"]) {
      r.error(m["frames"], join_path(p, "frames"),
              "expected either duration or frames, got both (duration at line " +
                  std::to_string(mark_of(m["duration"]).line + 1) + ")");
      break;
    }
    const bool is_duration = static_cast<bool>(m["duration"]);
    length = {is_duration ? m["duration"] : m["frames"], join_path(p, is_duration ? "duration" : "frames"), true};
    if (is_duration) {
      if (auto d = read_seconds(r, length.node, length.path)) {
        const double frames = *d * s.fps.value();
        if (frames > Limits::max_frames) {
          r.error(length.node, length.path,
                  "expected at most " + std::to_string(Limits::max_frames) + " frames (Limits::max_frames), got " +
                      format_number(std::round(frames)) + " frames (" + seconds_text(*d) + " at " +
                      format_number(s.fps.value()) + " fps)");
        } else if (std::llround(frames) < 1) {
          r.expected(length.node, length.path, "at least one frame (" + format_number(s.fps.value()) + " fps)");
        } else {
          s.frames = std::llround(frames);
          length_ok = true;
        }
      }
    } else if (auto v = r.integer(length.node, length.path, 1, Limits::max_frames, "Limits::max_frames")) {
      s.frames = *v;
      length_ok = true;
    }
    break;
  }
  if (!length && !length_ok) {
    bool both = false;
    for (const auto& [n, p] : L.items) {
      const YAML::Node& m = n;
      both = both || (is_map(m) && m["duration"] && m["frames"]);
    }
    if (!both) r.error(shot_node, join_path(prefix, "duration"), "expected seconds (or 'frames: N'), got nothing");
  }
  s.duration = length_ok ? s.frames / s.fps.value() : 0;

  // seed
  s.seed = default_seed(s.id);
  if (const Found f = L.get("seed"))
    if (auto v = r.unsigned64(f.node, f.path)) s.seed = *v;

  if (const Found f = L.get("prompt"))
    if (auto t = r.text(f.node, f.path)) s.prompt = *t;
  if (const Found f = L.get("negative_prompt"))
    s.negative_prompt = read_negative_prompt(r, f.node, f.path);
  if (c.options.precision_override) {
    s.precision = *c.options.precision_override;
  } else if (const Found f = L.get("precision")) {
    if (auto v = r.choice(f.node, f.path, kPrecisions)) s.precision = *v;
  }
  if (const Found f = L.get("title"))
    if (auto t = r.text(f.node, f.path)) s.title = *t;

  read_keyframes(c, L, shot_node, prefix, s, length_ok);
  read_motion(c, L, s.motion);
  read_sampler(c, L, s.sampler);
  {
    const Layers M = L.sub("models", r, "keyframe, temporal, vae", {"keyframe", "temporal", "vae"});
    if (const Found f = M.get("keyframe")) s.keyframe_model = read_model(c, f, true);
    if (const Found f = M.get("temporal")) s.temporal_model = read_model(c, f, false);
    if (const Found f = M.get("vae")) {
      s.vae_model = read_vae(c, f);
      const Found k = M.get("keyframe");  // (a keyframe path with an error of its own: not reported twice)
      const bool builtin = !k || (is_plain_scalar(k.node) && (k.node.Scalar() == "builtin" || k.node.Scalar() == "procedural"));
      if (s.vae_model && builtin)
        r.error(f.node, f.path,
                "expected models.vae only with a Stable Diffusion keyframe model (models.keyframe), got it with the "
                "built-in keyframe model (its own small VAE is the only one its latents fit)");
    }
    if (s.keyframe_model.kind == ModelRef::Kind::Builtin) {
      if (!s.sampler.guidance_given) s.sampler.guidance = Sampler::kBuiltinGuidance;
      s.keyframe_model.path = builtin_keyframe_model();
      std::error_code ec;
      if (c.options.check_files && !fs::exists(s.keyframe_model.path / "model_index.json", ec)) {
        const Found k = M.get("keyframe");
        r.error(k ? mark_of(k.node) : mark_of(shot_node), k ? k.path : join_path(prefix, "models.keyframe"),
                "the built-in model is missing: no " + (s.keyframe_model.path / "model_index.json").string() +
                    " (set CLIPGEN_BUILTIN_MODELS to the folder holding clipgen-tiny, or name a model)");
      }
    }
  }
  read_size(c, L, shot_node, prefix, s);
  read_post(c, L, s.post);
  if (const Found f = L.get("audio")) s.audio = read_existing_file(c, f, "audio file");
  if (!s.id.empty() && preset_ok) read_output(c, L, shot_node, prefix, res);

  // warnings
  if (preset_ok && length_ok && s.preset.max_duration > 0 && s.duration > s.preset.max_duration + 1e-9)
    add_warning(c, mark_of(length.node), length.path,
                seconds_text(s.duration) + " is longer than preset '" + s.preset.name + "' allows (" +
                    seconds_text(s.preset.max_duration) + ")");
  const Insets& ui = s.preset.safe_zones.platform_ui;
  if (preset_ok && !s.title.empty() && (ui.top > 0 || ui.bottom > 0 || ui.left > 0 || ui.right > 0)) {
    const Insets& ts = s.preset.safe_zones.title_safe;
    const int W = s.preset.width, H = s.preset.height;
    const int x0 = static_cast<int>(std::lround(W * std::max(ts.left, ui.left)));
    const int x1 = W - static_cast<int>(std::lround(W * std::max(ts.right, ui.right)));
    const int y0 = static_cast<int>(std::lround(H * std::max(ts.top, ui.top)));
    const int y1 = H - static_cast<int>(std::lround(H * std::max(ts.bottom, ui.bottom)));
    auto pct = [](double f) { return format_number(std::round(f * 1000) / 10) + "%"; };
    const Found f = L.get("title");
    add_warning(c, mark_of(f.node), f.path,
                "preset '" + s.preset.name + "' shows platform UI over the top " + pct(ui.top) + ", bottom " +
                    pct(ui.bottom) + ", left " + pct(ui.left) + " and right " + pct(ui.right) +
                    " of the frame; place the title inside x " + std::to_string(x0) + ".." + std::to_string(x1) +
                    ", y " + std::to_string(y0) + ".." + std::to_string(y1) + " of " + std::to_string(W) + "x" +
                    std::to_string(H));
  }
  if (s.keyframe_model.kind == ModelRef::Kind::Builtin) {
    // The built-in model knows its training vocabulary only: say once which words it will ignore.
    std::vector<std::string> unknown;
    auto collect = [&](const std::string& prompt) {
      for (const auto& w : scenes::parse_prompt(prompt).unknown)
        if (std::find(unknown.begin(), unknown.end(), w) == unknown.end()) unknown.push_back(w);
    };
    collect(s.prompt);
    for (const auto& k : s.keyframes) collect(k.prompt);
    if (!unknown.empty()) {
      std::string words;
      for (size_t i = 0; i < unknown.size() && i < 12; ++i) words += (i ? ", '" : "'") + unknown[i] + "'";
      if (unknown.size() > 12) words += fmt::format(" and {} more", unknown.size() - 12);
      const Found f = L.get("prompt");
      add_warning(c, mark_of(f ? f.node : shot_node), f ? f.path : join_path(prefix, "prompt"),
                  "the built-in model does not know " + words +
                      ": it draws skies, grounds and a ball, box or kite in eight colours (docs/builtin-model.md); "
                      "name Stable Diffusion weights as models.keyframe for anything else");
    }
  }
  return res;
}

void read_file(Context& c, const YAML::Node& root, std::vector<Resolved>& out) {
  Reader& r = c.r;
  const std::string what = "a shot (id, prompt, duration, ...) or a shot list (version, defaults, shots)";
  if (!root.IsDefined() || root.IsNull()) {
    YAML::Mark m;
    r.error(m, "", "expected " + what + ", got an empty file");
    return;
  }
  if (!root.IsMap()) {
    r.expected(root, "", what);
    return;
  }
  if (root["version"]) {
    const YAML::Node v = root["version"];
    if (!is_plain_scalar(v) || v.Scalar() != "1") r.expected(v, "version", "1 (the schema version this clipgen reads)");
  }
  if (root["shots"]) {
    r.check_keys(root, "", {"version", "defaults", "shots"});
    const YAML::Node shots = root["shots"];
    YAML::Node defaults;
    bool have_defaults = false;
    if (root["defaults"]) {
      defaults = root["defaults"];
      if (r.require_map(defaults, "defaults", "settings shared by every shot")) {
        have_defaults = true;
        if (defaults["id"])
          r.error(defaults["id"], "defaults.id",
                  "expected ids only in shots (each shot needs its own), got " + describe(defaults["id"]));
        r.check_keys(defaults, "defaults", with(without(kShotKeys, "id"), {"id"}));
      }
    }
    if (!is_seq(shots) || shots.size() == 0) {
      r.expected(shots, "shots", "a list of shots");
      return;
    }
    for (size_t i = 0; i < shots.size(); ++i) {
      const YAML::Node item = shots[i];
      const std::string prefix = "shots[" + std::to_string(i) + "]";
      if (!r.require_map(item, prefix, "a shot: id, prompt, duration, ...")) continue;
      out.push_back(resolve_shot(c, item, prefix, have_defaults ? &defaults : nullptr, kShotKeys));
    }
    return;
  }
  if (root["defaults"])
    r.error(root["defaults"], "defaults", "expected a 'shots:' list for the defaults to apply to, got none");
  out.push_back(resolve_shot(c, root, "", nullptr, with(kShotKeys, {"version", "defaults"})));
}

}  // namespace

uint64_t default_seed(const std::string& id) {
  uint64_t h = 14695981039346656037ULL;  // FNV-1a, 64 bit
  for (unsigned char ch : id) {
    h ^= ch;
    h *= 1099511628211ULL;
  }
  return (h >> 32) ^ (h & 0xffffffffULL);
}

ShotList load_shots(const std::vector<fs::path>& files, const LoadOptions& options) {
  const PresetRegistry presets = PresetRegistry::load(options.preset_dirs);
  if (options.preset_override && !presets.find(*options.preset_override))
    throw ConfigError("--preset: expected a preset name (see clipgen presets), got '" + *options.preset_override + "'" +
                      did_you_mean(*options.preset_override, presets.names()));

  if (options.precision_override &&
      std::find(kPrecisions.begin(), kPrecisions.end(), *options.precision_override) == kPrecisions.end())
    throw ConfigError("--precision: expected one of auto, fp32, bf16, fp16, got '" + *options.precision_override +
                      "'" + did_you_mean(*options.precision_override, kPrecisions));

  std::error_code ec;
  fs::path out_root = fs::absolute(options.out_root, ec).lexically_normal();
  if (auto canon = fs::weakly_canonical(out_root, ec); !ec) out_root = canon;
  if (out_root.has_filename() == false && out_root.has_parent_path()) out_root = out_root.parent_path();

  Diagnostics sink;
  ShotList list;
  std::vector<std::unique_ptr<Reader>> readers;
  std::vector<Resolved> all;
  for (size_t i = 0; i < files.size(); ++i) {
    readers.push_back(std::make_unique<Reader>(sink, files[i].string(), static_cast<int>(i)));
    Reader& r = *readers.back();
    auto root = load_yaml_file(files[i], r);
    if (!root) continue;
    Context c{r,        presets,      options, fs::absolute(files[i], ec).parent_path().lexically_normal(),
              out_root, list.warnings};
    std::vector<Resolved> shots;
    read_file(c, *root, shots);
    for (auto& s : shots) {
      s.shot.source_file = fs::absolute(files[i], ec).lexically_normal();
      s.origin.reader = &r;
      all.push_back(std::move(s));
    }
  }

  // Ids and outputs must be unique across all files.
  std::map<std::string, const Resolved*> ids;
  std::map<fs::path, const Resolved*> outputs;
  for (const auto& res : all) {
    if (!res.shot.id.empty()) {
      auto [it, fresh] = ids.emplace(res.shot.id, &res);
      if (!fresh)
        res.origin.reader->error(res.origin.id_mark, res.origin.id_path,
                                 "expected a unique shot id, got '" + res.shot.id + "' (already used at " +
                                     at_string(*it->second->origin.reader, it->second->origin.id_mark) + ")");
      else if (res.ok_output) {
        auto [ot, ofresh] = outputs.emplace(res.shot.output, &res);
        if (!ofresh)
          res.origin.reader->error(res.origin.output_mark, res.origin.output_path,
                                   "expected an output file no other shot writes, got '" + res.shot.output.string() +
                                       "' (also written by shot '" + ot->second->shot.id + "' at " +
                                       at_string(*ot->second->origin.reader, ot->second->origin.output_mark) + ")");
      }
    }
  }
  sink.throw_if_any();
  for (auto& res : all) list.shots.push_back(std::move(res.shot));
  return list;
}

}  // namespace clipgen::configs
