#include "stages/temporal.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/io/diffusers_folder.h"
#include "models/rng.h"
#include "models/runtime.h"

namespace clipgen::stages {
namespace fs = std::filesystem;

c10::Device SVDModel::device() const { return unet->parameters().front().device(); }

void SVDModel::to(c10::Device d, c10::ScalarType dt) {
  image_encoder->to(d, dt);
  vae->to(d, vae_dtype_for(dt, vae->config().force_upcast));
  unet->to(d, dt);
}

c10::ScalarType SVDModel::dtype() const { return unet->parameters().front().scalar_type(); }
c10::ScalarType SVDModel::vae_dtype() const { return vae->parameters().front().scalar_type(); }

SVDModel load_svd_components(const SVDComponentPaths& p, const std::string& source) {
  SVDModel m;
  m.source = source;
  m.image_encoder = load_clip_vision_model_with_projection(p.image_encoder);
  if (!p.feature_extractor.empty())
    m.feature_extractor = CLIPImageNormalization::from_file(p.feature_extractor / "preprocessor_config.json");
  m.vae = load_autoencoder_kl_temporal_decoder(p.vae);
  m.unet = load_unet_spatio_temporal_condition(p.unet);
  m.scheduler_config = schedulers::SchedulerConfig::from_file(p.scheduler_config);
  const auto& ucfg = m.unet->config();
  // encoder_hidden_states are the image embeddings: the projection width must be the cross-attention width.
  const int64_t proj = m.image_encoder->config().projection_dim;
  for (int64_t c : ucfg.cross_attention_dim)
    if (c != proj)
      throw ModelLoadError(source, "",
                           fmt::format("image encoder projection_dim {} does not match the UNet's "
                                       "cross_attention_dim {}",
                                       proj, c));
  const int64_t lat = m.vae->config().latent_channels;
  if (ucfg.in_channels != 2 * lat)
    throw ModelLoadError(source, "",
                         fmt::format("UNet in_channels {} is not twice the VAE's latent_channels {} (noisy "
                                     "latents + image latents)",
                                     ucfg.in_channels, lat));
  if (ucfg.projection_class_embeddings_input_dim != 3 * ucfg.addition_time_embed_dim)
    throw ModelLoadError(source, "",
                         fmt::format("UNet projection_class_embeddings_input_dim {} is not 3 × "
                                     "addition_time_embed_dim {} (fps, motion bucket, noise augmentation)",
                                     ucfg.projection_class_embeddings_input_dim, ucfg.addition_time_embed_dim));
  return m;
}

io::PipelineIndex read_svd_pipeline_index(const fs::path& root) {
  auto idx = io::read_pipeline_index(root);
  const std::string index_file = (root / "model_index.json").string();
  if (idx.pipeline_class != "StableVideoDiffusionPipeline")
    throw ModelLoadError(index_file, "",
                         "pipeline class '" + idx.pipeline_class +
                             "' is not an image-to-video model: the temporal stage "
                             "needs a StableVideoDiffusionPipeline folder (SVD, SVD-XT)");
  // Every component's class first (a wrong model is the more useful message), then the folders.
  const std::pair<const char*, const char*> needed[] = {{"image_encoder", "CLIPVisionModelWithProjection"},
                                                        {"unet", "UNetSpatioTemporalConditionModel"},
                                                        {"vae", "AutoencoderKLTemporalDecoder"},
                                                        {"scheduler", ""}};
  for (const auto& [name, cls] : needed) {
    if (!idx.has(name)) throw ModelLoadError(index_file, "", fmt::format("pipeline has no component '{}'", name));
    const auto& got = idx.components.at(name).second;
    if (*cls && got != cls)
      throw ModelLoadError(index_file, "",
                           fmt::format("component '{}' is a {}; the temporal stage needs a {}", name, got, cls));
  }
  return idx;
}

SVDModel load_svd_pipeline(const fs::path& root) {
  const auto idx = read_svd_pipeline_index(root);
  SVDComponentPaths p;
  p.image_encoder = idx.component_dir("image_encoder");
  p.unet = idx.component_dir("unet");
  p.vae = idx.component_dir("vae");
  p.scheduler_config = idx.component_dir("scheduler") / "scheduler_config.json";
  if (idx.has("feature_extractor")) p.feature_extractor = idx.component_dir("feature_extractor");
  return load_svd_components(p, root.string());
}

// ---------------------------------------------------------------------------------------------------------------

// [1, 3, H, W] float32 in [0, 1] on the CPU from the accepted image layouts.
static at::Tensor image01(const at::Tensor& img) {
  if (!img.defined()) throw UsageError("temporal segment: no conditioning image");
  if (img.scalar_type() == torch::kUInt8) {
    if (img.dim() != 3 || img.size(2) != 3)
      throw UsageError(fmt::format("temporal segment: a uint8 conditioning image must be [H, W, 3], got [{}]",
                                   fmt::join(img.sizes(), ", ")));
    // PIL → numpy float32 / 255 → NCHW, as diffusers' pil_to_numpy / numpy_to_pt.
    return img.to(torch::kCPU).to(torch::kFloat).div(255.0f).permute({2, 0, 1}).unsqueeze(0).contiguous();
  }
  if (!img.is_floating_point())
    throw UsageError("temporal segment: the conditioning image must be uint8 [H, W, 3] or float in [0, 1]");
  auto x = img.to(torch::kCPU, torch::kFloat);
  if (x.dim() == 3) x = x.unsqueeze(0);
  if (x.dim() != 4 || x.size(0) != 1 || x.size(1) != 3)
    throw UsageError(
        fmt::format("temporal segment: a float conditioning image must be [1, 3, H, W] or [3, H, W], got [{}]",
                    fmt::join(img.sizes(), ", ")));
  return x.contiguous();
}

at::Tensor conditioning_image(const at::Tensor& frame01) { return image01(frame01); }

void decode_segment_latents(SVDModel& m, const at::Tensor& latents, int decode_chunk,
                            const std::function<void(int64_t, const at::Tensor&)>& sink, const SegmentCallbacks& cb) {
  at::Tensor z = latents;
  if (z.dim() == 5) z = z.flatten(0, 1);  // [B, F, C, h, w] → [B·F, C, h, w]
  if (z.dim() != 4)
    throw UsageError(fmt::format("decode: expected latents [F, C, h, w], got [{}]", fmt::join(latents.sizes(), ", ")));
  z = (z * (1.0 / m.vae->scaling_factor())).to(m.vae_dtype());  // diffusers: 1 / scaling_factor * latents
  const int64_t n_all = z.size(0);
  const int64_t chunk = decode_chunk > 0 ? decode_chunk : n_all;
  int j = 0;
  for (int64_t i = 0; i < n_all; i += chunk, ++j) {
    if (cb.check_cancel) cb.check_cancel();
    const int64_t n = std::min(chunk, n_all - i);
    auto in = z.narrow(0, i, n);          // [n, C, h, w]
    auto decoded = m.vae->decode(in, n).to(torch::kFloat);  // [n, 3, H, W] in about [-1, 1]; one video of n frames
    if (cb.trace) {
      cb.trace("vae_decode_input_" + std::to_string(j), in);
      cb.trace("vae_decode_output_" + std::to_string(j), decoded);
    }
    sink(i, (decoded / 2 + 0.5).clamp(0, 1));
  }
}

SegmentResult generate_segment(SVDModel& m, const SegmentRequest& r, const SegmentCallbacks& cb) {
  torch::NoGradGuard no_grad;
  auto trace = [&](const std::string& name, const at::Tensor& t) {
    if (cb.trace) cb.trace(name, t);
  };
  const auto dev = m.device();
  const auto& ucfg = m.unet->config();
  const int64_t f = m.vae->downscale_factor();
  const int64_t unet_multiple = f * (int64_t{1} << (ucfg.block_out_channels.size() - 1));
  if (r.width <= 0 || r.height <= 0 || r.width % unet_multiple != 0 || r.height % unet_multiple != 0)
    throw UnsupportedError(fmt::format("temporal segment size {}x{} must be a positive multiple of {} for this model",
                                       r.width, r.height, unet_multiple));
  const int64_t F = r.num_frames > 0 ? r.num_frames : ucfg.num_frames;
  if (F < 1) throw UsageError("temporal segment: num_frames must be positive");
  if (r.steps < 1) throw UsageError(fmt::format("temporal segment: steps must be positive (got {})", r.steps));
  const bool cfg = r.max_guidance > 1.0;  // diffusers: do_classifier_free_guidance with guidance_scale = max
  auto gen = make_generator(r.seed);
  auto img = image01(r.image);  // [1, 3, h0, w0] in [0, 1]
  // The models run in their own dtype (SVDModel::to); latents and the scheduler stay float32.
  const auto dt = m.dtype(), vdt = m.vae_dtype();

  // 1. CLIP image embeddings of the image as given (the pipeline's _encode_image).
  auto pixel_values = svd_clip_preprocess(img, m.feature_extractor).to(dev, dt);  // [1, 3, 224, 224]
  auto image_embeds = m.image_encoder->forward(pixel_values).image_embeds;    // [1, D]
  trace("image_embeds", image_embeds);
  auto ehs = image_embeds.unsqueeze(1);                      // [1, 1, D]
  if (cfg) ehs = torch::cat({torch::zeros_like(ehs), ehs});  // [2, 1, D]
  ehs = ehs.to(dt);

  // 2. Noise augmentation of the image at the output size (the first generator draw).
  auto vimg = img;
  if (vimg.size(2) != r.height || vimg.size(3) != r.width) {
    namespace F_ = torch::nn::functional;
    vimg = F_::interpolate(vimg, F_::InterpolateFuncOptions()
                                     .size(std::vector<int64_t>{r.height, r.width})
                                     .mode(torch::kBicubic)
                                     .align_corners(false)
                                     .antialias(true))
               .clamp(0, 1);
  }
  vimg = (2.0 * vimg - 1.0).to(dev);  // [1, 3, H, W] in [-1, 1]
  at::Tensor aug_noise;
  if (r.noise_aug_noise) {
    aug_noise = r.noise_aug_noise->to(dev, torch::kFloat);
    if (aug_noise.sizes() != vimg.sizes())
      throw UsageError(fmt::format("temporal segment: noise_aug_noise has shape [{}], expected [{}]",
                                   fmt::join(aug_noise.sizes(), ", "), fmt::join(vimg.sizes(), ", ")));
  } else {
    aug_noise = randn(vimg.sizes(), gen, dev);
  }
  trace("noise_aug_noise", aug_noise);
  auto vae_in = vimg + r.noise_aug_strength * aug_noise;
  trace("vae_encode_input", vae_in);

  // 3. Image latents: posterior mode, not scaled; zeros for the unconditional half; repeated over frames.
  auto image_latents = m.vae->encode(vae_in.to(vdt)).mode().to(torch::kFloat);  // [1, C, h, w]
  trace("image_latents", image_latents);
  if (cfg) image_latents = torch::cat({torch::zeros_like(image_latents), image_latents});  // [2, C, h, w]
  image_latents = image_latents.unsqueeze(1).repeat({1, F, 1, 1, 1});                      // [B, F, C, h, w]

  // 4. added_time_ids = [fps − 1, motion_bucket_id, noise_aug_strength] (SVD was trained on fps − 1).
  auto time_ids = torch::tensor({static_cast<float>(r.fps - 1), static_cast<float>(r.motion_bucket_id),
                                 static_cast<float>(r.noise_aug_strength)},
                                torch::kFloat)
                      .unsqueeze(0)
                      .repeat({cfg ? 2 : 1, 1})
                      .to(dev, dt);  // [B, 3]
  trace("added_time_ids", time_ids);
  trace("unet_encoder_hidden_states", ehs);

  // 5. Timesteps.
  auto sched = r.sampler.empty() ? schedulers::make_scheduler(m.scheduler_config.class_name, m.scheduler_config)
                                 : schedulers::make_scheduler_for_sampler(m.scheduler_config, r.sampler);
  sched->set_timesteps(r.steps);
  trace("timesteps", sched->timesteps());
  if (sched->sigmas().defined()) trace("sigmas", sched->sigmas());
  trace("init_noise_sigma", torch::tensor(sched->init_noise_sigma(), torch::kFloat));

  // 6. Initial latents (the second generator draw).
  const std::vector<int64_t> shape = {1, F, ucfg.in_channels / 2, r.height / f, r.width / f};
  at::Tensor latents;
  if (r.latents) {
    latents = r.latents->to(dev, torch::kFloat);
    if (latents.sizes() != at::IntArrayRef(shape))
      throw UsageError(fmt::format("temporal segment: latents have shape [{}], expected [{}]",
                                   fmt::join(latents.sizes(), ", "), fmt::join(shape, ", ")));
  } else {
    latents = randn(shape, gen, dev);
  }
  latents = latents * sched->init_noise_sigma();

  // 7. Guidance ramp per frame: linspace(min, max, F) → [1, F, 1, 1, 1].
  auto guidance = torch::linspace(r.min_guidance, r.max_guidance, F).unsqueeze(0).to(dev);  // [1, F]
  guidance = guidance.reshape({1, F, 1, 1, 1});
  trace("guidance_scale", guidance);

  // 8. Denoising loop (the scheduler's own draws come from the same generator, after the latents).
  const int n = sched->num_steps();
  for (int i = 0; i < n; ++i) {
    if (cb.check_cancel) cb.check_cancel();
    auto in = cfg ? torch::cat({latents, latents}) : latents;  // [B, F, C, h, w]
    in = sched->scale_model_input(in, i);
    in = torch::cat({in, image_latents}, 2);                          // [B, F, 2C, h, w]
    auto t = sched->timesteps().slice(0, i, i + 1);                   // [1] (c_noise)
    auto noise_pred = m.unet->forward(in.to(dt), t.to(dev), ehs, time_ids);  // [B, F, C, h, w]
    const std::string k = std::to_string(i);
    trace("unet_input_" + k, in);
    trace("unet_timestep_" + k, t);
    trace("unet_output_" + k, noise_pred);  // in the model's dtype
    noise_pred = noise_pred.to(torch::kFloat);
    if (cfg) {
      auto parts = noise_pred.chunk(2);
      noise_pred = parts[0] + guidance * (parts[1] - parts[0]);
    }
    latents = sched->step(noise_pred, i, latents, &gen).prev_sample;
    trace("latents_" + k, latents);
    if (cb.on_step) cb.on_step(i + 1, n);
  }
  trace("final_latents", latents);

  SegmentResult out;
  out.latents = latents;
  if (!r.decode) return out;

  // 9. Decode decode_chunk frames per VAE call.
  const int chunk = r.decode_chunk > 0 ? r.decode_chunk : static_cast<int>(F);
  at::Tensor frames = torch::empty({F, 3, r.height, r.width}, torch::kFloat);  // [F, 3, H, W] on the CPU
  decode_segment_latents(
      m, latents, chunk,
      [&](int64_t first, const at::Tensor& x) {
        frames.narrow(0, first, x.size(0)).copy_(x.to(torch::kCPU, torch::kFloat));
      },
      cb);
  out.frames = frames.unsqueeze(0);  // [1, F, 3, H, W]
  trace("frames", out.frames);
  return out;
}

}  // namespace clipgen::stages
