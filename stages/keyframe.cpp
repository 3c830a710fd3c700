#include "stages/keyframe.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "models/io/diffusers_folder.h"
#include "models/io/single_file.h"
#include "models/io/state_dict.h"
#include "models/rng.h"
#include "models/runtime.h"

namespace clipgen::stages {
namespace fs = std::filesystem;

const char* to_string(SDFamily f) {
  switch (f) {
    case SDFamily::SD1: return "sd1";
    case SDFamily::SD2: return "sd2";
    case SDFamily::SDXL: return "sdxl";
  }
  return "?";
}

int64_t SDModel::native_size() const {
  // diffusers: default height = unet.config.sample_size * vae_scale_factor.
  return unet_sample_size * vae->downscale_factor();
}

c10::Device SDModel::device() const { return unet->parameters().front().device(); }

void SDModel::to(c10::Device d, c10::ScalarType dt) {
  if (text_encoder) text_encoder->to(d, dt);
  if (text_encoder_2) text_encoder_2->to(d, dt);
  unet->to(d, dt);
  vae->to(d, vae_dtype_for(dt, vae->config().force_upcast));
}

c10::ScalarType SDModel::dtype() const { return unet->parameters().front().scalar_type(); }
c10::ScalarType SDModel::vae_dtype() const { return vae->parameters().front().scalar_type(); }

SDModel load_sd_components(const SDComponentPaths& p, const std::string& source) {
  SDModel m;
  m.source = source;
  m.tokenizer = CLIPTokenizer::from_folder(p.tokenizer);
  m.text_encoder = load_clip_text_model(p.text_encoder);
  m.unet = load_unet_2d_condition(p.unet);
  m.unet_sample_size = io::read_json(p.unet / "config.json").value("sample_size", int64_t{64});
  m.vae = load_autoencoder_kl(p.vae);
  m.scheduler_config = schedulers::SchedulerConfig::from_file(p.scheduler_config);
  const auto& ucfg = m.unet->config();
  if (!p.text_encoder_2.empty()) {
    m.family = SDFamily::SDXL;
    m.tokenizer_2 = CLIPTokenizer::from_folder(p.tokenizer_2);
    m.text_encoder_2 = load_clip_text_model_with_projection(p.text_encoder_2);
    if (ucfg.addition_embed_type != "text_time")
      throw ModelLoadError(p.unet.string(), "", "a two-text-encoder (SDXL) pipeline needs a UNet with addition_embed_type \"text_time\"");
  } else {
    if (ucfg.addition_embed_type == "text_time")
      throw ModelLoadError(p.unet.string(), "", "this UNet expects SDXL conditioning (text_time) but the pipeline has one text encoder");
    // SD 2.x text encoders use gelu (OpenCLIP); SD 1.x CLIP-L uses quick_gelu.
    m.family = m.text_encoder->config().encoder.hidden_act == CLIPActivation::GELU ? SDFamily::SD2 : SDFamily::SD1;
  }
  const int64_t text_dim = m.text_encoder->config().encoder.hidden_size +
                           (m.text_encoder_2 ? m.text_encoder_2->config().encoder.hidden_size : 0);
  if (text_dim != ucfg.cross_attention_dim)
    throw ModelLoadError(source, "", "text encoder width " + std::to_string(text_dim) +
                                         " does not match the UNet's cross_attention_dim " +
                                         std::to_string(ucfg.cross_attention_dim));
  return m;
}

SDModel load_sd_pipeline(const fs::path& root) {
  auto idx = io::read_pipeline_index(root);
  const std::string& cls = idx.pipeline_class;
  const bool xl = cls.find("StableDiffusionXL") != std::string::npos;
  const bool sd = cls.rfind("StableDiffusion", 0) == 0 && cls.find("Video") == std::string::npos &&
                  cls.find("Upscale") == std::string::npos && cls.find("Depth") == std::string::npos;
  if (!sd)
    throw ModelLoadError((root / "model_index.json").string(), "",
                         "pipeline class '" + cls + "' cannot make keyframes: the keyframe stage needs a Stable "
                         "Diffusion text-to-image model (StableDiffusionPipeline, StableDiffusionXLPipeline, "
                         "their Img2Img variants)");
  SDComponentPaths p;
  p.tokenizer = idx.component_dir("tokenizer");
  p.text_encoder = idx.component_dir("text_encoder");
  p.unet = idx.component_dir("unet");
  p.vae = idx.component_dir("vae");
  p.scheduler_config = idx.component_dir("scheduler") / "scheduler_config.json";
  if (xl) {
    p.tokenizer_2 = idx.component_dir("tokenizer_2");
    p.text_encoder_2 = idx.component_dir("text_encoder_2");
  }
  auto m = load_sd_components(p, root.string());
  m.force_zeros_for_empty_prompt = io::read_json(root / "model_index.json").value("force_zeros_for_empty_prompt", true);
  return m;
}

fs::path model_data_dir() {
  if (const char* env = std::getenv("CLIPGEN_MODEL_DATA"); env && *env) return env;
  return CLIPGEN_MODEL_DATA_DIR;
}

SDModel load_sd_single_file(const fs::path& file, const io::SingleFileOverrides& overrides) {
  auto ckpt = io::load_single_file(file, overrides, torch::kFloat);
  const std::string src = file.string();
  auto& cfgs = ckpt.plan.configs;
  auto need = [&](const char* comp) -> io::TensorMap& {
    auto it = ckpt.components.find(comp);
    if (it == ckpt.components.end() || it->second.empty())
      throw ModelLoadError(src, "", std::string("the checkpoint has no ") + comp +
                                        " component; a keyframe model needs UNet, VAE and text encoder(s)");
    return it->second;
  };
  SDModel m;
  m.source = src;
  const bool xl = ckpt.family == io::SingleFileFamily::SDXL;
  const bool sd2 = ckpt.family == io::SingleFileFamily::SD2;
  m.family = xl ? SDFamily::SDXL : sd2 ? SDFamily::SD2 : SDFamily::SD1;
  const auto data = model_data_dir();
  m.tokenizer = CLIPTokenizer::from_folder(data / (sd2 ? "clip_tokenizer_pad0" : "clip_tokenizer"));
  m.text_encoder = CLIPTextModel(CLIPTextConfig::from_json(cfgs.at("text_encoder"), src + " (text_encoder)"));
  io::load_state_dict(*m.text_encoder, need("text_encoder"), src + " (text_encoder)");
  if (xl) {
    m.tokenizer_2 = CLIPTokenizer::from_folder(data / "clip_tokenizer_pad0");
    m.text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig::from_json(cfgs.at("text_encoder_2"), src + " (text_encoder_2)"));
    io::load_state_dict(*m.text_encoder_2, need("text_encoder_2"), src + " (text_encoder_2)");
  }
  m.unet = UNet2DConditionModel(UNet2DConditionConfig::from_json(cfgs.at("unet"), src + " (unet)"));
  io::load_state_dict(*m.unet, need("unet"), src + " (unet)");
  m.unet_sample_size = cfgs.at("unet").value("sample_size", int64_t{64});
  m.vae = AutoencoderKL(AutoencoderKLConfig::from_json(cfgs.at("vae"), src + " (vae)"));
  io::load_state_dict(*m.vae, need("vae"), src + " (vae)");
  m.scheduler_config = schedulers::SchedulerConfig::from_json(cfgs.at("scheduler"), src + " (scheduler)");
  m.text_encoder->eval();
  if (m.text_encoder_2) m.text_encoder_2->eval();
  m.unet->eval();
  m.vae->eval();
  return m;
}

SDModel load_sd_model(const fs::path& path) {
  if (fs::is_directory(path)) return load_sd_pipeline(path);
  return load_sd_single_file(path);
}

// ---------------------------------------------------------------------------------------------------------------

static at::Tensor ids_tensor(const CLIPTokenizer& tok, const std::string& text, int64_t max_len, c10::Device d) {
  auto t = tok.encode_padded(text, max_len);
  return torch::tensor(t.input_ids, torch::kLong).unsqueeze(0).to(d);  // [1, L]
}

PromptEmbeds encode_prompt(SDModel& m, const std::string& prompt, int clip_skip) {
  const auto dev = m.device();
  PromptEmbeds out;
  const int skip = std::max(0, clip_skip - 1);  // diffusers' clip_skip (0 = none)
  if (m.family != SDFamily::SDXL) {
    auto ids = ids_tensor(*m.tokenizer, prompt, m.tokenizer->model_max_length(), dev);
    if (skip == 0) {
      out.embeds = m.text_encoder->forward(ids).last_hidden_state;
    } else {
      CLIPTextForwardOptions o;
      o.output_hidden_states = true;
      auto r = m.text_encoder->forward(ids, o);
      out.embeds = m.text_encoder->text_model->final_layer_norm(r.hidden_state(-(skip + 1)));
    }
    return out;
  }
  CLIPTextForwardOptions o;
  o.output_hidden_states = true;
  auto ids1 = ids_tensor(*m.tokenizer, prompt, m.tokenizer->model_max_length(), dev);
  auto ids2 = ids_tensor(*m.tokenizer_2, prompt, m.tokenizer_2->model_max_length(), dev);
  auto r1 = m.text_encoder->forward(ids1, o);
  auto r2 = m.text_encoder_2->forward(ids2, o);
  out.embeds = torch::cat({r1.hidden_state(-(skip + 2)), r2.hidden_state(-(skip + 2))}, -1);  // [1, 77, C1+C2]
  out.pooled = r2.text_embeds;                                                                // [1, P]
  return out;
}

// diffusers encodes the negative prompt without clip-skip (SD) and always from the penultimate layer (SDXL).
static PromptEmbeds encode_negative(SDModel& m, const std::optional<std::string>& negative,
                                   const PromptEmbeds& pos) {
  if (m.family == SDFamily::SDXL) {
    if (!negative && m.force_zeros_for_empty_prompt)
      return {torch::zeros_like(pos.embeds), torch::zeros_like(pos.pooled)};
    return encode_prompt(m, negative.value_or(""), 1);
  }
  const auto dev = m.device();
  auto ids = ids_tensor(*m.tokenizer, negative.value_or(""), pos.embeds.size(1), dev);
  return {m.text_encoder->forward(ids).last_hidden_state, {}};
}

KeyframeResult generate_keyframe(SDModel& m, const KeyframeRequest& r, const KeyframeCallbacks& cb) {
  auto trace = [&](const std::string& name, const at::Tensor& t) {
    if (cb.trace) cb.trace(name, t);
  };
  const auto dev = m.device();
  const int64_t f = m.vae->downscale_factor();
  if (r.width % f != 0 || r.height % f != 0)
    throw UnsupportedError("keyframe size " + std::to_string(r.width) + "x" + std::to_string(r.height) +
                           " must be a multiple of " + std::to_string(f));
  const bool cfg = r.guidance > 1.0;
  // The models run in their own dtype (SDModel::to); latents and the scheduler stay float32, so only the
  // model calls cast (as diffusers' schedulers upcast the sample in step()).
  const auto dt = m.dtype(), vdt = m.vae_dtype();

  // 1. Text conditioning: [uncond; cond].
  auto pos = encode_prompt(m, r.prompt, r.clip_skip);
  at::Tensor context = pos.embeds, pooled = pos.pooled;
  if (cfg) {
    auto neg = encode_negative(m, r.negative_prompt, pos);
    trace("negative_prompt_embeds", neg.embeds);
    context = torch::cat({neg.embeds, pos.embeds});  // [2, 77, C]
    if (pooled.defined()) pooled = torch::cat({neg.pooled, pos.pooled});
  }
  trace("prompt_embeds", pos.embeds);
  context = context.to(dt);  // text encoders may run in another precision than the UNet
  if (pooled.defined()) pooled = pooled.to(dt);
  at::Tensor time_ids;
  if (m.family == SDFamily::SDXL) {
    // add_time_ids = original_size + crops_coords_top_left + target_size
    auto one = torch::tensor({double(r.height), double(r.width), 0.0, 0.0, double(r.height), double(r.width)},
                             torch::kFloat).unsqueeze(0);
    time_ids = one.repeat({context.size(0), 1}).to(dev, dt);
  }

  // 2. Timesteps.
  auto sched = r.sampler.empty() ? schedulers::make_scheduler(m.scheduler_config.class_name, m.scheduler_config)
                                 : schedulers::make_scheduler_for_sampler(m.scheduler_config, r.sampler, r.sigma_schedule);
  sched->set_timesteps(r.steps);
  trace("timesteps", sched->timesteps());
  if (sched->sigmas().defined()) trace("sigmas", sched->sigmas());
  trace("init_noise_sigma", torch::tensor(sched->init_noise_sigma(), torch::kFloat));

  // 3. Initial latents (one generator for every draw of this keyframe, in diffusers' order).
  auto gen = make_generator(r.seed);
  const std::vector<int64_t> shape = {1, m.unet->config().in_channels, r.height / f, r.width / f};
  int start = 0;
  at::Tensor latents;
  if (r.init_image) {
    if (!(r.strength >= 0.0 && r.strength <= 1.0))  // diffusers check_inputs
      throw UnsupportedError("img2img strength must be in [0, 1], got " + std::to_string(r.strength));
    const int n = sched->num_steps();
    const int init_timestep = std::min(static_cast<int>(r.steps * r.strength), n);
    start = std::max(n - init_timestep, 0);
    if (start >= n) throw UnsupportedError("img2img strength " + std::to_string(r.strength) + " leaves no denoising step");
    auto posterior = m.vae->encode(r.init_image->to(dev, vdt));
    auto mean = posterior.mean.to(torch::kFloat), std = posterior.std.to(torch::kFloat);
    auto init = (mean + std * randn(mean.sizes(), gen, dev)) * m.vae->scaling_factor();  // [1,4,h,w]
    auto noise = r.latents ? r.latents->to(dev) : randn(init.sizes(), gen, dev);
    auto t0 = sched->timesteps().slice(0, start, start + 1);
    latents = sched->add_noise(init, noise, t0);
  } else {
    auto noise = r.latents ? r.latents->to(dev) : randn(shape, gen, dev);
    latents = noise * sched->init_noise_sigma();
  }

  // 4. Denoising loop.
  const int n = sched->num_steps();
  for (int i = start; i < n; ++i) {
    if (cb.check_cancel) cb.check_cancel();
    auto in = cfg ? torch::cat({latents, latents}) : latents;
    in = sched->scale_model_input(in, i);
    auto t = sched->timesteps()[i];
    auto noise_pred = m.unet->forward(in.to(dt), t.to(dev), context, pooled, time_ids);
    const std::string k = std::to_string(i - start);
    trace("unet_input_" + k, in);
    trace("unet_timestep_" + k, t.reshape({1}));  // recorded as a 1-element tensor
    trace("unet_output_" + k, noise_pred);          // in the model's dtype
    noise_pred = noise_pred.to(torch::kFloat);
    if (cfg) {
      auto parts = noise_pred.chunk(2);
      noise_pred = parts[0] + r.guidance * (parts[1] - parts[0]);
    }
    latents = sched->step(noise_pred, i, latents, &gen).prev_sample;
    trace("latents_" + k, latents);
    if (cb.on_step) cb.on_step(i - start + 1, n - start);
  }
  trace("final_latents", latents);

  // 5. Decode.
  auto z = m.vae->unscale_latents(latents);
  trace("vae_decode_input", z);
  auto decoded = m.vae->decode(z.to(vdt)).to(torch::kFloat);
  trace("vae_decode_output", decoded);
  KeyframeResult out;
  out.latents = latents;
  out.image = (decoded / 2 + 0.5).clamp(0, 1).to(torch::kCPU, torch::kFloat);
  trace("image", out.image);
  return out;
}

at::Tensor image_to_tensor(const std::vector<uint8_t>& rgb, int src_w, int src_h, int64_t width, int64_t height) {
  auto img = torch::from_blob(const_cast<uint8_t*>(rgb.data()), {src_h, src_w, 3}, torch::kByte)
                 .permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat).div(255.0);  // [1,3,H,W] in [0,1]
  // Scale so the image covers the target, then centre-crop (no distortion).
  const double s = std::max(double(width) / src_w, double(height) / src_h);
  const int64_t w = std::max<int64_t>(width, std::llround(src_w * s));
  const int64_t h = std::max<int64_t>(height, std::llround(src_h * s));
  namespace F = torch::nn::functional;
  img = F::interpolate(img, F::InterpolateFuncOptions().size(std::vector<int64_t>{h, w}).mode(torch::kBicubic)
                                .align_corners(false).antialias(true));
  const int64_t y0 = (h - height) / 2, x0 = (w - width) / 2;
  img = img.slice(2, y0, y0 + height).slice(3, x0, x0 + width).clamp(0, 1);
  return img * 2 - 1;
}

}  // namespace clipgen::stages
