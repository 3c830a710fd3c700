#include "pipeline/diffusion_renderer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "models/io/diffusers_folder.h"
#include "models/io/single_file.h"
#include "models/rng.h"
#include "models/runtime.h"
#include "pipeline/graph.h"
#include "stages/contact_sheet.h"
#include "stages/image_io.h"
#include "stages/keyframe_vae.h"
#include "stages/segments.h"

namespace clipgen::pipeline {
namespace fs = std::filesystem;

// A shot's single-file model settings as the loader's overrides (docs/shot-schema.md#models).
static io::SingleFileOverrides single_file_overrides(const configs::ModelRef& ref) {
  io::SingleFileOverrides o;
  const auto& s = ref.settings;
  o.use_original_config = !ref.ignore_original_config;
  o.original_config = ref.original_config;
  o.unet_heads = s.unet_heads;
  o.unet_head_channels = s.unet_head_channels;
  o.unet_norm_num_groups = s.unet_norm_groups;
  o.unet_upcast_attention = s.unet_upcast_attention;
  o.unet_addition_time_embed_dim = s.unet_addition_time_embed_dim;
  o.unet_sample_size = s.unet_sample_size;
  o.prediction_type = s.prediction_type;
  o.vae_scaling_factor = s.vae_scaling_factor;
  o.vae_norm_num_groups = s.vae_norm_groups;
  o.vae_sample_size = s.vae_sample_size;
  o.text_encoder_heads = s.text_encoder_heads;
  o.text_encoder_2_heads = s.text_encoder_2_heads;
  o.text_encoder_act = s.text_encoder_activation;
  o.text_encoder_2_act = s.text_encoder_2_activation;
  o.text_encoder_layers = s.text_encoder_layers;
  return o;
}

template <typename Model, typename Load>
std::shared_ptr<Model> ModelCache::get(const std::string& key, const c10::Device& device, c10::ScalarType dtype,
                                       Load&& load) {
  std::lock_guard<std::mutex> g(mutex_);
  const std::string full_key = key + "@" + device.str() + "@" + precision_name(dtype);
  ++clock_;
  if (auto it = models_.find(full_key); it != models_.end()) {
    it->second.last_use = clock_;
    return std::static_pointer_cast<Model>(it->second.model);
  }
  make_room(device.str());  // release first: the new model's memory may be the old one's
  auto m = std::make_shared<Model>(load());
  m->to(device, dtype);
  if (dtype == c10::kBFloat16 && device.is_cpu() && !cpu_has_native_bf16())
    spdlog::warn("{}: bf16 on a CPU without avx512_bf16/amx_bf16 is emulated and likely slower than fp32",
                 m->source);
  models_[full_key] = Entry{device.str(), clock_, m};
  locks_[m.get()] = std::make_unique<std::mutex>();
  return m;
}

void ModelCache::make_room(const std::string& device) {
  for (;;) {
    size_t count = 0;
    auto lru = models_.end();
    for (auto it = models_.begin(); it != models_.end(); ++it) {
      if (it->second.device != device) continue;
      ++count;
      // use_count() == 1: only the cache holds it. New holders appear only under mutex_, so this is stable.
      if (it->second.model.use_count() == 1 && (lru == models_.end() || it->second.last_use < lru->second.last_use))
        lru = it;
    }
    if (count < max_per_device_ || lru == models_.end()) return;
    spdlog::info("model cache: releasing {} ({} models resident on {}, limit {})", lru->first.substr(0, lru->first.find('\n')),
                 count, device, max_per_device_);
    locks_.erase(lru->second.model.get());
    models_.erase(lru);
  }
}

std::vector<std::string> ModelCache::resident(const std::string& device) const {
  std::lock_guard<std::mutex> g(mutex_);
  std::vector<std::pair<uint64_t, std::string>> v;
  for (const auto& [k, e] : models_)
    if (e.device == device) v.emplace_back(e.last_use, k);
  std::sort(v.begin(), v.end());
  std::vector<std::string> out;
  for (auto& [t, k] : v) out.push_back(std::move(k));
  return out;
}

std::shared_ptr<stages::SDModel> ModelCache::sd(const configs::ModelRef& model, const c10::Device& device,
                                                c10::ScalarType dtype, const std::optional<configs::ModelRef>& vae) {
  const fs::path& path = model.path;
  std::string key = "sd " + fs::weakly_canonical(path).string();
  if (!fs::is_directory(path)) key += "\n" + model.to_json();  // the same file with other settings is another model
  if (vae) key += "\nvae " + fs::weakly_canonical(vae->path).string();  // another VAE is another model
  return get<stages::SDModel>(key, device, dtype, [&] {
    auto m = fs::is_directory(path) ? stages::load_sd_pipeline(path)
                                    : stages::load_sd_single_file(path, single_file_overrides(model));
    if (vae) stages::replace_vae(m, vae->path);
    return m;
  });
}

std::shared_ptr<stages::SVDModel> ModelCache::svd(const fs::path& path, const c10::Device& device,
                                                  c10::ScalarType dtype) {
  return get<stages::SVDModel>("svd " + fs::weakly_canonical(path).string(), device, dtype,
                               [&] { return stages::load_svd_pipeline(path); });
}

std::mutex& ModelCache::lock_for(const void* m) {
  std::lock_guard<std::mutex> g(mutex_);
  return *locks_.at(m);
}

std::pair<int, int> diffusion_generation_raster(const configs::Preset& preset, int64_t native, int multiple) {
  const double w = preset.width, h = preset.height;
  const int q = native >= 512 ? 64 : std::max(8, multiple);
  auto down = [q](double v) { return std::max(q, static_cast<int>(std::floor(v / q)) * q); };
  if (native >= 1024) {  // keep the area
    const double s = std::sqrt(static_cast<double>(native) * native / (w * h));
    return {down(w * s), down(h * s)};
  }
  const double s = static_cast<double>(native) / std::min(w, h);  // short side = native
  return {down(w * s), down(h * s)};
}

std::pair<int, int> video_generation_raster(const configs::Preset& preset, int64_t native, int multiple) {
  const double w = preset.width, h = preset.height;
  const int q = std::max(1, multiple);
  auto down = [q](double v) { return std::max(q, static_cast<int>(std::floor(v / q)) * q); };
  const double s = std::sqrt(static_cast<double>(native) * native / (w * h));  // keep the area
  return {down(w * s), down(h * s)};
}

// 2^(levels − 1) of a diffusers UNet/VAE config: the VAE's downscale factor, or how many latent pixels a UNet
// side must be a multiple of (diffusers' default: 4 levels).
static int64_t levels_factor(const nlohmann::json& cfg) {
  const auto levels = cfg.contains("block_out_channels") ? cfg["block_out_channels"].size() : size_t{4};
  return int64_t{1} << (levels - 1);
}

// A model's native pixel size: UNet sample_size × VAE downscale factor.
static int64_t native_pixels(const nlohmann::json& unet_cfg, const nlohmann::json& vae_cfg, int64_t default_sample) {
  return unet_cfg.value("sample_size", default_sample) * levels_factor(vae_cfg);
}

// The keyframe model's native pixel size and the multiple its sides need (VAE factor × UNet levels).
static std::pair<int64_t, int> native_size_of(const configs::ModelRef& model) {
  // Cheap: read the configs (or a single file's header) only; plan() must not load weights.
  const fs::path& root = model.path;
  auto of = [](const nlohmann::json& unet, const nlohmann::json& vae) {
    return std::make_pair(native_pixels(unet, vae, 64), static_cast<int>(levels_factor(vae) * levels_factor(unet)));
  };
  if (!fs::is_directory(root)) {
    // Zero-copy views; nothing is read but the header. The shot's settings may set the sample size.
    auto ckpt = io::load_single_file(root, single_file_overrides(model));
    return of(ckpt.plan.configs.at("unet"), ckpt.plan.configs.at("vae"));
  }
  auto idx = io::read_pipeline_index(root);
  return of(io::read_json(idx.component_dir("unet") / "config.json"), io::read_json(idx.component_dir("vae") / "config.json"));
}

std::pair<int, int> keyframe_raster(const configs::Shot& shot) {
  if (shot.gen_width > 0 && shot.gen_height > 0) return {shot.gen_width, shot.gen_height};
  const auto [native, multiple] = native_size_of(shot.keyframe_model);
  return diffusion_generation_raster(shot.preset, native, multiple);
}

namespace {

// What plan() needs of an image-to-video folder, from its configs only (no weights).
struct VideoModelInfo {
  int64_t native = 0;    // native pixel size (UNet sample_size × VAE factor)
  int64_t multiple = 8;  // segment sides must be multiples of this
  int frames = 25;       // frames per run it was trained for (UNet config num_frames; diffusers' default 25)
};

VideoModelInfo video_model_info(const configs::ModelRef& ref) {
  using K = configs::ModelRef::Kind;
  if (ref.kind == K::SingleFile)
    throw UnsupportedError("temporal model '" + ref.spec +
                           "': single-file video checkpoints are not supported; name a diffusers "
                           "StableVideoDiffusionPipeline folder (SVD, SVD-XT)");
  const auto idx = stages::read_svd_pipeline_index(ref.path);  // the loader's checks, before any weights
  auto ucfg = io::read_json(idx.component_dir("unet") / "config.json");
  auto vcfg = io::read_json(idx.component_dir("vae") / "config.json");
  VideoModelInfo info;
  info.native = native_pixels(ucfg, vcfg, 96);
  info.multiple = levels_factor(vcfg) * levels_factor(ucfg);
  info.frames = static_cast<int>(ucfg.value("num_frames", int64_t{25}));
  return info;
}

// The shot's segment plan; motion.num_frames 0 means the video model's own segment length.
stages::SegmentPlan segment_plan(const configs::Shot& shot) {
  const int model_frames = shot.motion.num_frames > 0 ? shot.motion.num_frames : video_model_info(shot.temporal_model).frames;
  return stages::plan_segments(stages::segment_options(shot, model_frames));
}

bool has_video_model(const configs::Shot& shot) {
  return shot.temporal_model.has_weights();
}

}  // namespace

GenerationPlan DiffusionRenderer::plan(const configs::Shot& shot) const {
  using K = configs::ModelRef::Kind;
  if (!shot.keyframe_model.has_weights())
    throw UnsupportedError("the diffusion renderer needs a keyframe model (the built-in one, a diffusers folder or a .safetensors file)");
  GenerationPlan p;
  p.keyframes = std::max<int>(1, static_cast<int>(shot.keyframes.size()));
  p.batch_frames = std::max(1, shot.motion.decode_chunk);
  if (!has_video_model(shot)) {
    std::tie(p.width, p.height) = keyframe_raster(shot);
    p.fps = shot.fps;  // stills: no retiming needed
    p.frames = std::max<int64_t>(1, shot.frames);
    p.segments = 1;
    return p;
  }
  const auto info = video_model_info(shot.temporal_model);
  if (shot.gen_width > 0 && shot.gen_height > 0) {
    if (shot.gen_width % info.multiple != 0 || shot.gen_height % info.multiple != 0)
      throw UnsupportedError(fmt::format("size {}x{}: the temporal model '{}' needs sides that are multiples of {}",
                                         shot.gen_width, shot.gen_height, shot.temporal_model.spec, info.multiple));
    p.width = shot.gen_width;
    p.height = shot.gen_height;
  } else {
    std::tie(p.width, p.height) = video_generation_raster(shot.preset, info.native, static_cast<int>(info.multiple));
  }
  const auto segs = segment_plan(shot);  // validates the motion settings
  p.fps = configs::Rational{shot.motion.generation_fps, 1};
  p.frames = segs.total_frames();
  p.segments = static_cast<int>(segs.segments.size());
  return p;
}

std::string DiffusionRenderer::precision_on(const configs::Shot& shot, const Device& device) const {
  return precision_name(resolve_precision(shot.precision, device.torch_device()));
}

std::shared_ptr<stages::SDModel> DiffusionRenderer::keyframe_model(const configs::Shot& shot,
                                                                   const StageContext& ctx) const {
  const auto device = ctx.device().torch_device();
  return cache_->sd(shot.keyframe_model, device, resolve_precision(shot.precision, device), shot.vae_model);
}

Conditioning DiffusionRenderer::encode_text(ShotJob job, StageContext& ctx) {
  keyframe_model(ctx.shot(), ctx);
  ctx.progress(1, 1);
  Conditioning c;
  c.job = std::move(job);
  return c;
}

// [3,H,W] in [0,1] → uint8 [H,W,3], rounded as a PNG of the image would hold it.
static at::Tensor to_hwc_u8(const at::Tensor& img) {
  return img.mul(255).round().clamp(0, 255).to(torch::kByte).permute({1, 2, 0}).contiguous();
}

// Keyframe k's text-to-image request at w×h (prompt and negative prompt fall back to the shot's).
static stages::KeyframeRequest keyframe_request(const configs::Shot& shot, int k, int64_t w, int64_t h) {
  const auto& kf = shot.keyframes.at(static_cast<size_t>(k));
  stages::KeyframeRequest r;
  r.prompt = kf.prompt.empty() ? shot.prompt : kf.prompt;
  r.negative_prompt = kf.negative_prompt ? kf.negative_prompt : shot.negative_prompt;
  r.width = w;
  r.height = h;
  r.steps = shot.sampler.steps;
  r.guidance = shot.sampler.guidance;
  r.sampler = shot.sampler.name;
  r.sigma_schedule = shot.sampler.sigma_schedule;
  r.clip_skip = shot.sampler.clip_skip;
  r.seed = derive_seed(shot.seed, SeedStream::KeyframeLatents, static_cast<uint64_t>(k));
  return r;
}

static fs::path beside_output(const configs::Shot& shot, const std::string& suffix) {
  return shot.output.parent_path() / (shot.output.stem().string() + suffix);
}

static fs::path keyframe_png(const configs::Shot& shot, int k) {
  return beside_output(shot, ".keyframe" + std::to_string(k) + ".png");
}

static void write_keyframe_png(const configs::Shot& shot, int k, const stages::Frame& frame) {
  auto png = keyframe_png(shot, k);
  fs::create_directories(png.parent_path());
  stages::write_png(frame, png);
}

// <output>.contact.png from the keyframe PNGs beside the output (so it always shows the keyframes as
// delivered, continuity remakes included). A contact sheet that cannot be drawn (no font) is a warning:
// it never costs the shot.
static void write_shot_contact_sheet(const configs::Shot& shot, int count, const StageContext& ctx) {
  try {
    std::vector<stages::Frame> images;
    images.reserve(static_cast<size_t>(count));
    for (int k = 0; k < count; ++k) images.push_back(stages::read_image(keyframe_png(shot, k)));
    std::vector<stages::ContactSheetEntry> entries;
    for (int k = 0; k < count; ++k) {
      const auto& kf = shot.keyframes.at(static_cast<size_t>(k));
      entries.push_back({&images[static_cast<size_t>(k)], kf.at_seconds, kf.frame, kf.prompt.empty() ? shot.prompt : kf.prompt});
    }
    stages::write_contact_sheet(beside_output(shot, ".contact.png"), shot.id, shot.title, entries);
  } catch (const Error& e) {
    ctx.warn(std::string("contact sheet not written: ") + e.what());
  }
}

static stages::Frame to_frame(const at::Tensor& img) {  // [3,H,W] in [0,1]
  auto u8 = to_hwc_u8(img.to(torch::kCPU));
  stages::Frame f(static_cast<int>(u8.size(1)), static_cast<int>(u8.size(0)));
  std::memcpy(f.rgb.data(), u8.data_ptr(), f.rgb.size());
  return f;
}

KeyframeLatents DiffusionRenderer::keyframes(Conditioning cond, StageContext& ctx) {
  const auto& shot = ctx.shot();
  const auto& plan = ctx.plan();
  auto model = keyframe_model(shot, ctx);
  std::lock_guard<std::mutex> g(cache_->lock_for(model.get()));
  const int k_count = plan.keyframes;
  const auto [kw, kh] = keyframe_raster(shot);
  std::vector<at::Tensor> latents, images;
  for (int k = 0; k < k_count; ++k) {
    const auto& kf = shot.keyframes.at(static_cast<size_t>(k));
    auto r = keyframe_request(shot, k, kw, kh);
    if (kf.image) {
      auto img = stages::read_image(*kf.image);
      r.init_image = stages::image_to_tensor(img.rgb, img.width, img.height, kw, kh);
      r.strength = kf.strength;
    }
    stages::KeyframeCallbacks cb;
    cb.check_cancel = [&] { ctx.throw_if_cancelled(); };
    cb.on_step = [&](int step, int total) { ctx.progress(static_cast<int64_t>(k) * total + step, int64_t{k_count} * total); };
    auto res = stages::generate_keyframe(*model, r, cb);
    latents.push_back(res.latents.to(torch::kCPU));
    images.push_back(res.image);
  }
  KeyframeLatents out;
  out.job = std::move(cond.job);
  out.latents = torch::cat(latents);                // [K, 4, h, w]
  out.extra["images"] = torch::cat(images);         // [K, 3, H, W] in [0, 1]
  for (int k = 0; k < k_count; ++k) {
    out.images.push_back(to_frame(out.extra["images"][k]));
    write_keyframe_png(shot, k, out.images.back());
  }
  write_shot_contact_sheet(shot, k_count, ctx);
  return out;
}

SegmentLatents DiffusionRenderer::temporal(const KeyframeLatents& kf, int segment, const SegmentLatents* previous,
                                           StageContext& ctx) {
  const auto& shot = ctx.shot();
  const auto& plan = ctx.plan();
  SegmentLatents out;
  out.header = kf.job.header;
  out.segment = segment;
  if (!has_video_model(shot)) {  // stills: nothing to generate
    out.first_frame = 0;
    out.frames = plan.frames;
    out.latents = torch::zeros({0});
    ctx.progress(1, 1);
    return out;
  }
  const auto segs = segment_plan(shot);
  const auto& seg = segs.segments.at(static_cast<size_t>(segment));
  if (seg.previous >= 0 && (previous == nullptr || previous->segment != seg.previous))
    throw Error(fmt::format("temporal segment {} needs segment {} first", segment, seg.previous));
  const auto& images = kf.extra.at("images");  // [K, 3, h, w] in [0, 1]

  // The conditioning image, uint8 [H, W, 3] (as the keyframe PNG / a decoded frame holds it).
  at::Tensor cond;
  if (seg.source == stages::ConditionSource::PreviousSegment) {
    cond = previous->extra.at("frames")[seg.condition_frame];
  } else if (seg.continuity > 0 && !shot.keyframes.at(static_cast<size_t>(seg.keyframe)).image) {
    // Keyframe k made by img2img from the frame the previous section shows at p_k (a smooth change).
    cond = to_hwc_u8(continuity_keyframe(kf, seg, *previous, ctx)[0]);
    out.extra["keyframe"] = cond;
  } else {
    cond = to_hwc_u8(images[seg.keyframe].to(torch::kCPU));
  }

  const auto device = ctx.device().torch_device();
  auto model = cache_->svd(shot.temporal_model.path, device, resolve_precision(shot.precision, device));
  std::lock_guard<std::mutex> g(cache_->lock_for(model.get()));
  stages::SegmentRequest r;
  r.image = cond;
  r.width = plan.width;
  r.height = plan.height;
  r.num_frames = static_cast<int>(seg.num_frames);
  r.steps = shot.motion.steps;
  r.min_guidance = shot.motion.min_guidance;
  r.max_guidance = shot.motion.max_guidance;
  r.fps = shot.motion.fps_conditioning;
  r.motion_bucket_id = shot.motion.motion_bucket_id;
  r.noise_aug_strength = shot.motion.noise_aug_strength;
  r.decode_chunk = shot.motion.decode_chunk;
  r.seed = stages::segment_seed(shot.seed, segment);
  stages::SegmentCallbacks cb;
  cb.check_cancel = [&] { ctx.throw_if_cancelled(); };
  cb.on_step = [&](int step, int total) {  // steps of the whole shot's temporal stage
    ctx.progress(int64_t{segment} * total + step, int64_t{plan.segments} * total);
  };
  auto res = stages::generate_segment(*model, r, cb);
  out.first_frame = seg.first_frame;
  out.frames = seg.length;
  out.latents = res.latents[0].to(torch::kCPU);  // [F, C, h, w]
  // Decoded frames as uint8 [F, H, W, 3]: what the shot blends, and what a chained segment starts from.
  out.extra["frames"] = res.frames[0].mul(255).round().clamp(0, 255).to(torch::kByte).permute({0, 2, 3, 1}).contiguous();
  return out;
}

at::Tensor DiffusionRenderer::continuity_keyframe(const KeyframeLatents& kf, const stages::PlannedSegment& seg,
                                                  const SegmentLatents& previous, StageContext& ctx) {
  const auto& shot = ctx.shot();
  const auto& images = kf.extra.at("images");
  const int64_t kh = images.size(2), kw = images.size(3);
  const auto& from = previous.extra.at("frames")[seg.continuity_frame];  // uint8 [H, W, 3]
  auto model = keyframe_model(shot, ctx);
  std::lock_guard<std::mutex> g(cache_->lock_for(model.get()));
  auto r = keyframe_request(shot, seg.keyframe, kw, kh);
  const auto rgb = from.contiguous();
  std::vector<uint8_t> pixels(rgb.data_ptr<uint8_t>(), rgb.data_ptr<uint8_t>() + rgb.numel());
  r.init_image = stages::image_to_tensor(pixels, static_cast<int>(rgb.size(1)), static_cast<int>(rgb.size(0)), kw, kh);
  r.strength = shot.motion.continuity;
  stages::KeyframeCallbacks cb;
  cb.check_cancel = [&] { ctx.throw_if_cancelled(); };
  auto res = stages::generate_keyframe(*model, r, cb);
  // The keyframe shown is this one: its PNG replaces the text-to-image one.
  write_keyframe_png(shot, seg.keyframe, to_frame(res.image[0]));
  write_shot_contact_sheet(shot, ctx.plan().keyframes, ctx);
  return res.image;  // [1, 3, h, w] in [0, 1]
}

FrameBatch DiffusionRenderer::decode(const ShotLatents& latents, int batch, StageContext& ctx) {
  const auto& shot = ctx.shot();
  const auto& plan = ctx.plan();
  if (has_video_model(shot)) return decode_segments(latents, batch, ctx);
  const auto& images = latents.keyframes.extra.at("images");  // [K, 3, H, W]
  const int64_t k_count = images.size(0);
  const int64_t transition = std::max(0, shot.motion.transition_frames);
  FrameBatch out;
  out.batch = batch;
  out.batches = plan.batches();
  out.first_frame = int64_t{batch} * plan.batch_frames;
  const int64_t end = std::min(plan.frames, out.first_frame + plan.batch_frames);
  for (int64_t f = out.first_frame; f < end; ++f) {
    // Keyframe k holds from its frame until the next keyframe, cross-fading into it over `transition` frames.
    int64_t k = 0;
    while (k + 1 < k_count && shot.keyframes[static_cast<size_t>(k + 1)].frame <= f) ++k;
    at::Tensor img = images[k];
    if (k + 1 < k_count && transition > 0) {
      const int64_t next = shot.keyframes[static_cast<size_t>(k + 1)].frame;
      const int64_t start = next - transition;
      if (f >= start) {
        const double w = static_cast<double>(f - start + 1) / static_cast<double>(transition + 1);
        img = images[k] * (1 - w) + images[k + 1] * w;
      }
    }
    out.frames.push_back(to_frame(img));
  }
  ctx.progress(1, 1);
  return out;
}

// Frames [batch · batch_frames, …) blended from the segments' decoded frames per the plan.
FrameBatch DiffusionRenderer::decode_segments(const ShotLatents& latents, int batch, StageContext& ctx) {
  const auto& plan = ctx.plan();
  // The segment length is what the temporal stage generated (no model configs read per batch).
  const int model_frames = static_cast<int>(latents.segments.at(0).extra.at("frames").size(0));
  const auto segs = stages::plan_segments(stages::segment_options(ctx.shot(), model_frames));
  FrameBatch out;
  out.batch = batch;
  out.batches = plan.batches();
  out.first_frame = int64_t{batch} * plan.batch_frames;
  const int64_t count = std::min<int64_t>(plan.frames - out.first_frame, plan.batch_frames);
  auto x = stages::assemble_range(segs, out.first_frame, count, [&](int s, int64_t local, int64_t n) {
    const auto& frames = latents.segments.at(static_cast<size_t>(s)).extra.at("frames");  // uint8 [F, H, W, 3]
    return frames.narrow(0, local, n).to(torch::kFloat);                                   // [n, H, W, 3], 0–255
  });
  auto u8 = x.round().clamp(0, 255).to(torch::kByte).contiguous();
  for (int64_t i = 0; i < count; ++i) {
    stages::Frame f(static_cast<int>(u8.size(2)), static_cast<int>(u8.size(1)));
    std::memcpy(f.rgb.data(), u8[i].data_ptr(), f.rgb.size());
    out.frames.push_back(std::move(f));
  }
  ctx.progress(1, 1);
  return out;
}

}  // namespace clipgen::pipeline
