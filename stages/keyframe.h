// Keyframe stage: Stable Diffusion 1.x / 2.x / SDXL text-to-image and image-to-image, as diffusers'
// StableDiffusionPipeline, StableDiffusionXLPipeline and their Img2Img variants do it (0.27.2):
// classifier-free guidance with [uncond; cond] in one batch, any scheduler of models/schedulers,
// clip-skip, SDXL's two text encoders with pooled embeddings and add_time_ids.
//
// Randomness: one CPU generator per keyframe, seeded by the caller (docs/seeds.md), used in diffusers'
// order — img2img posterior sample, initial noise, then the scheduler's own draws — so a seed gives
// exactly the latents diffusers gives on CPU for the same seed and shape.
#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "models/autoencoder_kl.h"
#include "models/clip_text_model.h"
#include "models/io/single_file.h"
#include "models/schedulers/scheduler.h"
#include "models/tokenizer/clip_tokenizer.h"
#include "models/unet_2d_condition.h"

namespace clipgen::stages {

enum class SDFamily { SD1, SD2, SDXL };
const char* to_string(SDFamily f);

// The components of one Stable Diffusion model, loaded once and reused for every keyframe.
struct SDModel {
  SDFamily family = SDFamily::SD1;
  std::string source;  // the folder or file it was loaded from (for messages and reports)
  std::optional<CLIPTokenizer> tokenizer, tokenizer_2;
  CLIPTextModel text_encoder{nullptr};                   // SD1/SD2, and SDXL's first encoder
  CLIPTextModelWithProjection text_encoder_2{nullptr};   // SDXL only
  UNet2DConditionModel unet{nullptr};
  AutoencoderKL vae{nullptr};
  schedulers::SchedulerConfig scheduler_config;
  bool force_zeros_for_empty_prompt = true;  // SDXL pipeline config: empty negative prompt → zero embeddings
  int64_t unet_sample_size = 64;             // unet config sample_size (latent pixels)

  // The model's native generation size in pixels (unet sample_size × VAE factor: 512, 768, 1024).
  int64_t native_size() const;
  c10::Device device() const;
  // Moves the model and casts its weights: text encoders and UNet to `dtype`, the VAE too unless `dtype` is
  // fp16 and the VAE's config says force_upcast (diffusers keeps such a VAE in float32: SDXL's overflows in
  // fp16). Latents, scheduler arithmetic and seeds stay float32 whatever the model runs in.
  void to(c10::Device device, c10::ScalarType dtype);
  c10::ScalarType dtype() const;      // the UNet's (and text encoders') weights
  c10::ScalarType vae_dtype() const;  // the VAE's weights
};

// Where each component lives (diffusers component folders; scheduler_config is a file).
struct SDComponentPaths {
  std::filesystem::path tokenizer, text_encoder, unet, vae, scheduler_config;
  std::filesystem::path tokenizer_2, text_encoder_2;  // SDXL
};

// Loads a diffusers pipeline folder (model_index.json). Errors: not a diffusers folder, a missing
// component, or a pipeline class the keyframe stage cannot use (e.g. a video pipeline) — each naming
// the folder and what was found.
SDModel load_sd_pipeline(const std::filesystem::path& root);
SDModel load_sd_components(const SDComponentPaths& paths, const std::string& source);

// Loads a single-file checkpoint in the original LDM/SGM layout (models/io/single_file.h): the family
// and architecture are detected from the file, every tensor is mapped to its diffusers name (memory
// mapped, converted to float32), and the CLIP tokenizers come from clipgen's own data (models/data),
// since single files carry no vocabulary. Errors name the file (and the component or tensor).
// `overrides` sets what shapes cannot tell (head counts, ...) for files that differ from their family's
// published settings.
SDModel load_sd_single_file(const std::filesystem::path& file, const io::SingleFileOverrides& overrides = {});

// Loads either form: a diffusers pipeline folder or a single .safetensors file.
SDModel load_sd_model(const std::filesystem::path& path);

// The folder holding clipgen's runtime data (tokenizers): $CLIPGEN_MODEL_DATA, else the source tree's models/data.
std::filesystem::path model_data_dir();

struct KeyframeRequest {
  std::string prompt;
  // Unset: no negative prompt. SD encodes "" for it; SDXL zeros the unconditional embeddings when the
  // model_index.json says force_zeros_for_empty_prompt (diffusers: `negative_prompt is None`), and encodes ""
  // otherwise. An explicit "" is always encoded.
  std::optional<std::string> negative_prompt;
  int64_t width = 512, height = 512;
  int steps = 25;
  double guidance = 7.5;
  std::string sampler = "euler";           // models/schedulers sampler name; "" = the model's own scheduler
  std::string sigma_schedule = "default";  // default | karras
  int clip_skip = 1;                       // 1 = last layer (A1111 convention); 2 = penultimate, ...
  uint64_t seed = 0;
  std::optional<at::Tensor> latents;       // explicit unscaled initial noise [1,4,h,w] (overrides the seed's draw)
  std::optional<at::Tensor> init_image;    // img2img: [1,3,H,W] in [-1,1] at (height, width)
  double strength = 0.75;                  // img2img strength
};

struct KeyframeCallbacks {
  // Receives named intermediates (the names of the pipeline fixtures: prompt_embeds, unet_input_i, ...).
  std::function<void(const std::string& name, const at::Tensor& value)> trace;
  std::function<void(int step, int total)> on_step;  // after each denoising step
  std::function<void()> check_cancel;                // may throw CancelledError
};

struct KeyframeResult {
  at::Tensor latents;  // [1,4,h,w] final latents (the scaled space the UNet works in)
  at::Tensor image;    // [1,3,H,W] in [0,1], float32 on CPU
};

KeyframeResult generate_keyframe(SDModel& model, const KeyframeRequest& request, const KeyframeCallbacks& cb = {});

// Text conditioning as diffusers' encode_prompt builds it for the model's family.
struct PromptEmbeds {
  at::Tensor embeds;         // [1, 77, cross_attention_dim]
  at::Tensor pooled;         // SDXL: [1, projection_dim]; undefined otherwise
};
PromptEmbeds encode_prompt(SDModel& model, const std::string& prompt, int clip_skip);

// Resizes (Lanczos-free bilinear antialiased) and centre-crops an RGB frame to width×height and returns
// [1,3,H,W] in [-1,1] — the img2img init image.
at::Tensor image_to_tensor(const std::vector<uint8_t>& rgb, int src_w, int src_h, int64_t width, int64_t height);

}  // namespace clipgen::stages
