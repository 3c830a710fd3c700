// Single-file Stable Diffusion checkpoints in the original layout (CompVis `ldm` for SD 1.x/2.x,
// Stability AI `sgm` for SDXL base): `model.diffusion_model.*` (UNet), `first_stage_model.*` (VAE),
// `cond_stage_model.*` / `conditioner.embedders.{0,1}.*` (text encoders), as A1111 and ComfyUI load them.
//
// load_single_file() detects the family from marker keys and shapes, infers every architecture value the
// shapes tell, takes the rest from the family's published settings (optionally overridden by an
// `original_config.yaml` beside the file and then by SingleFileOverrides), emits diffusers/transformers
// config.json objects for each component, and maps every tensor to its diffusers/transformers name
// (block indices by arithmetic; VAE 1×1-conv attention → Linear, OpenCLIP in_proj split into q/k/v,
// SDXL text_projection transposed). Tensors are zero-copy views of the memory-mapped file unless a dtype
// conversion is requested. Keys no component uses (schedule buffers, position_ids, EMA copies,
// logit_scale, SD 2.x's unused 24th text layer, …) are ignored and counted; an unknown weight-like key is
// a ModelLoadError naming it. See docs/weights.md.
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/io/safetensors.h"

namespace clipgen::io {

enum class SingleFileFamily { SD1, SD2, SDXL };
const char* family_name(SingleFileFamily f);  // "SD 1.x", "SD 2.x", "SDXL base"

// Values the shapes cannot tell. Unset fields take the original_config.yaml value, then the family's
// published setting.
struct SingleFileOverrides {
  // Which components to map: any of "unet", "vae", "text_encoder", "text_encoder_2". Empty: all of the
  // family's components (each must be in the file).
  std::vector<std::string> components;
  // Read `original_config.yaml` (or `<stem>.yaml`) beside the file when present; or this file.
  bool use_original_config = true;
  std::filesystem::path original_config;

  // UNet. unet_heads: the same head count at every level (SD 1.x style, published 8);
  // unet_head_channels: channels per head (SD 2.x / SDXL style, published 64). Setting one clears the other.
  std::optional<int> unet_heads, unet_head_channels;
  std::optional<int> unet_norm_num_groups;
  std::optional<bool> unet_upcast_attention;
  std::optional<int> unet_addition_time_embed_dim;  // SDXL; else (adm_in − text_projection width) / 6
  std::optional<int> unet_sample_size;
  std::optional<std::string> prediction_type;       // "epsilon" | "v_prediction" (scheduler config)
  // VAE
  std::optional<double> vae_scaling_factor;
  std::optional<int> vae_norm_num_groups;
  std::optional<int> vae_sample_size;
  // Text encoders (text_encoder_2 is SDXL's OpenCLIP bigG).
  std::optional<int> text_encoder_heads, text_encoder_2_heads;
  std::optional<std::string> text_encoder_act, text_encoder_2_act;
  // Layers of text_encoder to keep (SD 2.x default: all but the last, the published "penultimate").
  std::optional<int> text_encoder_layers;
};

using KeyShapes = std::map<std::string, std::vector<int64_t>>;

enum class SourceTransform {
  None,            // the tensor as it is
  Conv1x1ToLinear, // [C, C, 1, 1] → [C, C] (VAE mid-block attention)
  SplitQ, SplitK, SplitV,  // OpenCLIP in_proj_{weight,bias}: rows [0,h), [h,2h), [2h,3h)
  Transpose,       // SDXL text_projection [h, p] → [p, h]
};
struct TensorSource {
  std::string file_key;
  SourceTransform transform = SourceTransform::None;
};

// The mapping of a checkpoint, computed from names and shapes only (no tensor data).
struct SingleFilePlan {
  std::string file;
  SingleFileFamily family = SingleFileFamily::SD1;
  std::vector<std::string> components;                 // mapped, in pipeline order
  std::map<std::string, nlohmann::json> configs;        // component → config.json; also "scheduler"
  std::map<std::string, std::map<std::string, TensorSource>> sources;  // component → diffusers name → source
  std::map<std::string, KeyShapes> shapes;              // component → diffusers name → shape
  std::vector<std::string> ignored;                     // file keys deliberately unused
  std::vector<std::string> not_requested;               // file keys of components not asked for
  std::vector<std::string> present_components;          // components the file holds
  // A standalone VAE file in the LDM layout (encoder.*, decoder.*, quant_conv.*, post_quant_conv.* with no
  // 'first_stage_model.' prefix, as published VAE files are): its only component is "vae", with the
  // SD 1.x published settings (scaling_factor 0.18215) unless overridden.
  bool bare_vae = false;
  std::string summary;                                  // one line: family, sizes, counts
};

// Plans the mapping of a checkpoint given its keys and shapes. `file` names the checkpoint in errors.
// `yaml_text` is the original_config.yaml content ("" when none). Throws ModelLoadError / UnsupportedError.
SingleFilePlan plan_single_file(const KeyShapes& keys, const std::string& file, const SingleFileOverrides& overrides = {},
                                const std::string& yaml_text = "");

struct SingleFileCheckpoint {
  SingleFilePlan plan;
  SingleFileFamily family = SingleFileFamily::SD1;
  std::map<std::string, nlohmann::json>& configs() { return plan.configs; }
  std::map<std::string, TensorMap> components;  // component → diffusers name → tensor (views of the file)
  std::shared_ptr<SafetensorsFile> file;        // keeps the mapping alive (the views also do)
  const std::string& summary() const { return plan.summary; }
};

// Opens `path`, plans the mapping and materializes each component's tensors. `dtype` converts floating
// tensors (nullopt: keep the stored dtype, zero-copy). Logs the detected architecture once (spdlog info).
SingleFileCheckpoint load_single_file(const std::filesystem::path& path, const SingleFileOverrides& overrides = {},
                                      std::optional<c10::ScalarType> dtype = std::nullopt);

// True when a safetensors file's keys are in the single-file layout (any of the component prefixes).
bool is_single_file_checkpoint(const SafetensorsFile& file);

// The diffusers tensor for one source (applies the transform to a view; no copy for None/Conv1x1/Split).
at::Tensor apply_source(const SafetensorsFile& file, const TensorSource& src);

}  // namespace clipgen::io
