// The shot schema (version 1) in typed form. configs::load_shots() reads YAML shot files into these
// structs — validated, defaults merged, paths resolved against the YAML file's folder, seeds fixed —
// so nothing outside configs/ ever sees YAML. The schema is documented in docs/shot-schema.md.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "configs/preset.h"

namespace clipgen::configs {

// What a single-file checkpoint's weights cannot tell (`models.keyframe.settings`, docs/shot-schema.md).
// An unset field takes the file's LDM/SGM yaml (original_config), then the detected family's published
// setting. The names follow the YAML keys (settings.unet.heads → unet_heads).
struct ModelSettings {
  std::optional<std::string> prediction_type;  // epsilon | v_prediction | sample
  // UNet: heads (the same count at every level, SD 1.x style) XOR head_channels (SD 2.x / SDXL style).
  std::optional<int> unet_heads, unet_head_channels, unet_norm_groups, unet_addition_time_embed_dim, unet_sample_size;
  std::optional<bool> unet_upcast_attention;
  std::optional<double> vae_scaling_factor;
  std::optional<int> vae_norm_groups, vae_sample_size;
  std::optional<int> text_encoder_heads, text_encoder_layers, text_encoder_2_heads;
  std::optional<std::string> text_encoder_activation, text_encoder_2_activation;

  bool empty() const {
    return !prediction_type && !unet_heads && !unet_head_channels && !unet_norm_groups &&
           !unet_addition_time_embed_dim && !unet_sample_size && !unet_upcast_attention && !vae_scaling_factor &&
           !vae_norm_groups && !vae_sample_size && !text_encoder_heads && !text_encoder_layers &&
           !text_encoder_2_heads && !text_encoder_activation && !text_encoder_2_activation;
  }
};

// A model reference: the built-in model, a diffusers folder or a single .safetensors file. Written either
// as a path (`keyframe: x.safetensors`) or as a mapping (`keyframe: {path: x.safetensors, original_config:
// x.yaml, settings: {...}}`); original_config and settings are accepted for single files only.
//   Builtin     clipgen's own trained model (docs/builtin-model.md). As the keyframe model: the shipped
//               diffusers folder (`path` is set: builtin_model_dir()/clipgen-tiny), loaded like any SD folder.
//               As the temporal model, until the built-in video model ships: no video model (keyframes held
//               and cross-faded), as `none`.
//   Procedural  keyframe only: the procedural stand-in scene (stages/procedural), not diffusion — for fast
//               tests and layout previews.
//   None        temporal only: no video model; the shot is its keyframes held and cross-faded.
struct ModelRef {
  enum class Kind { Builtin, Procedural, None, DiffusersFolder, SingleFile } kind = Kind::Builtin;
  std::string spec = "builtin";   // the path as written in the shot file (for reports)
  std::filesystem::path path;     // absolute; the shipped folder for a Builtin keyframe model, else empty for Builtin/Procedural/None
  // A diffusers folder to load: a user's, or the built-in keyframe model's.
  bool is_folder() const { return kind == Kind::DiffusersFolder || (kind == Kind::Builtin && !path.empty()); }
  // Names weights to load (a folder or a single file).
  bool has_weights() const { return is_folder() || kind == Kind::SingleFile; }
  // Single files: the LDM/SGM yaml that describes the file (absolute). Empty: `original_config.yaml` or
  // `<stem>.yaml` beside the file is read when present, unless ignore_original_config (`original_config: none`).
  std::filesystem::path original_config;
  bool ignore_original_config = false;
  ModelSettings settings;         // single files only

  // The resolved reference as compact JSON (kind, spec, path, original_config, settings that are set);
  // the same object Shot::to_json() writes under "models".
  std::string to_json() const;
};

struct Keyframe {
  int64_t frame = 0;        // output frame index at the shot's fps where this keyframe sits
  double at_seconds = 0;    // the same position in seconds
  std::string prompt;       // defaults to the shot prompt
  // Defaults to the shot's. Unset and "" differ for SDXL (as in diffusers): no negative prompt gives zero
  // embeddings when the model's force_zeros_for_empty_prompt is set, "" encodes the empty text.
  std::optional<std::string> negative_prompt;
  std::optional<std::filesystem::path> image;  // init image (img2img), absolute
  double strength = 0.75;   // img2img strength (only with image)
  int line = 0;             // source line, for messages
};

struct Sampler {
  std::string name = "euler";        // ddim | pndm | euler | euler_ancestral | dpmpp_2m | lcm
  int steps = 25;
  double guidance = 7.5;             // the built-in keyframe model's default is kBuiltinGuidance
  bool guidance_given = false;       // the shot (or its defaults) set guidance
  // CFG scale a shot with the built-in keyframe model gets when it sets none: chosen on held-out prompts
  // (docs/builtin-model.md#quality; 7.5 oversaturates this small model's object colours).
  static constexpr double kBuiltinGuidance = 3.0;
  std::string sigma_schedule = "default";  // default | karras
  int clip_skip = 1;                 // 1 = last layer
};

// Temporal-stage (Stable Video Diffusion) settings.
struct Motion {
  int motion_bucket_id = 127;
  int fps_conditioning = 7;        // SVD "fps" conditioning (the model receives fps - 1)
  double noise_aug_strength = 0.02;
  int decode_chunk = 8;            // frames per temporal VAE decode call
  int num_frames = 0;              // frames per model run (segment); 0 = the temporal model's own (UNet config
                                   // num_frames: 14 SVD, 25 SVD-XT), as diffusers defaults it
  static constexpr int kBuiltinSegmentFrames = 14;  // what num_frames = 0 means for the built-in renderer
  int overlap = 2;                 // frames blended between chained segments
  int transition_frames = 4;       // frames blended at a keyframe change
  double continuity = 0.0;         // img2img strength from the previous segment's last frame (0 = off)
  double min_guidance = 1.0, max_guidance = 3.0;
  int generation_fps = 7;          // frames generated per second before retiming to the preset fps
  int steps = 25;                  // denoising steps per segment (the keyframe sampler has its own)
};

struct Post {
  std::string fit = "crop";        // crop | letterbox | stretch
  std::string retime = "blend";    // dup | blend | mci (motion-compensated interpolation)
};

struct Shot {
  std::string id;
  std::filesystem::path source_file;  // the YAML file
  int source_line = 0;
  Preset preset;                      // resolved preset (after --preset / shot overrides)
  Rational fps{30, 1};                // output fps
  int64_t frames = 0;                 // output frame count
  double duration = 0;                // seconds = frames / fps
  uint64_t seed = 0;
  std::string prompt;
  std::optional<std::string> negative_prompt;  // unset ≠ "" (see Keyframe)
  std::vector<Keyframe> keyframes;    // at least one; the first at frame 0
  Sampler sampler;
  Motion motion;
  Post post;
  ModelRef keyframe_model, temporal_model;
  // models.vae: a VAE replacing the keyframe model's own (a diffusers AutoencoderKL folder, kind
  // DiffusersFolder, or a .safetensors file, kind SingleFile: a full LDM/SGM checkpoint whose VAE alone is
  // used, or a standalone VAE file). Unset: the keyframe model's VAE.
  std::optional<ModelRef> vae_model;
  int gen_width = 0, gen_height = 0;  // generation raster; 0 = model-native size in the preset's aspect
  // Model weights and activations: "auto" (fp32 on CPU, fp16 on CUDA), "fp32", "bf16" or "fp16"
  // (docs/shot-schema.md#precision). Schedulers, latents and seeds stay float32 in every precision.
  std::string precision = "auto";
  std::filesystem::path output;       // absolute final output file, inside the output root
  std::optional<std::filesystem::path> audio;
  std::string title;                  // optional on-screen title (checked against safe zones)

  // The fully resolved shot as compact JSON (written into the output's metadata and reports).
  std::string to_json() const;
};

struct LoadOptions {
  std::filesystem::path out_root = "renders";  // outputs must stay inside it
  std::optional<std::string> preset_override;  // --preset
  std::optional<std::string> precision_override;  // --precision
  std::vector<std::filesystem::path> preset_dirs;  // user preset folders
  bool check_files = true;                     // check that images/audio/models exist
};

struct ShotList {
  std::vector<Shot> shots;
  std::vector<std::string> warnings;  // "file:line:col: warning: ..." (duration over preset max, title in UI zone)
};

// Loads and validates shot files. Collects every error of every file and throws one ConfigError whose
// message lists them all, one per line, each "file:line:col: key.path: expected ..., got ...".
ShotList load_shots(const std::vector<std::filesystem::path>& files, const LoadOptions& options = {});

// Added: the seed a shot gets when its file sets none — a pure function of the id (documented in
// docs/shot-schema.md): FNV-1a 64-bit hash of the id's UTF-8 bytes, folded to 32 bits (high xor low word),
// so it is the same on every machine and fits torch.Generator().manual_seed in Python.
uint64_t default_seed(const std::string& id);

// Hard limits checked before anything is allocated.
struct Limits {
  static constexpr int64_t max_frames = 100000;
  static constexpr int max_dimension = 8192;
  static constexpr int max_steps = 1000;
};

}  // namespace clipgen::configs
