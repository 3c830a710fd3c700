#include "pipeline/diffusion_renderer.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "models/io/diffusers_folder.h"
#include "models/io/single_file.h"
#include "models/rng.h"
#include "pipeline/graph.h"
#include "stages/image_io.h"

namespace clipgen::pipeline {
namespace fs = std::filesystem;

std::shared_ptr<stages::SDModel> ModelCache::sd(const fs::path& path, const c10::Device& device) {
  const std::string key = fs::weakly_canonical(path).string() + "@" + device.str();
  std::lock_guard<std::mutex> g(mutex_);
  auto it = sd_.find(key);
  if (it != sd_.end()) return it->second;
  auto m = std::make_shared<stages::SDModel>(stages::load_sd_model(path));
  m->to(device);
  sd_[key] = m;
  locks_[m.get()] = std::make_unique<std::mutex>();
  return m;
}

std::mutex& ModelCache::lock_for(const stages::SDModel* m) {
  std::lock_guard<std::mutex> g(mutex_);
  return *locks_.at(m);
}

std::pair<int, int> diffusion_generation_raster(const configs::Preset& preset, int64_t native) {
  const double w = preset.width, h = preset.height;
  const int q = native >= 512 ? 64 : 8;
  auto down = [q](double v) { return std::max(q, static_cast<int>(std::floor(v / q)) * q); };
  if (native >= 1024) {  // keep the area
    const double s = std::sqrt(static_cast<double>(native) * native / (w * h));
    return {down(w * s), down(h * s)};
  }
  const double s = static_cast<double>(native) / std::min(w, h);  // short side = native
  return {down(w * s), down(h * s)};
}

static int64_t native_size_of(const fs::path& root) {
  // Cheap: read the configs (or a single file's header) only; plan() must not load weights.
  if (!fs::is_directory(root)) {
    auto ckpt = io::load_single_file(root);  // zero-copy views; nothing is read but the header
    const auto& u = ckpt.plan.configs.at("unet");
    const auto& v = ckpt.plan.configs.at("vae");
    return u.value("sample_size", int64_t{64}) * (int64_t{1} << (v["block_out_channels"].size() - 1));
  }
  auto idx = io::read_pipeline_index(root);
  auto ucfg = io::read_json(idx.component_dir("unet") / "config.json");
  auto vcfg = io::read_json(idx.component_dir("vae") / "config.json");
  const int64_t sample = ucfg.value("sample_size", int64_t{64});
  const auto levels = vcfg.contains("block_out_channels") ? vcfg["block_out_channels"].size() : size_t{4};
  return sample * (int64_t{1} << (levels - 1));
}

GenerationPlan DiffusionRenderer::plan(const configs::Shot& shot) const {
  using K = configs::ModelRef::Kind;
  if (shot.keyframe_model.kind == K::Builtin)
    throw UnsupportedError("the diffusion renderer needs a keyframe model (a diffusers folder or a .safetensors file)");
  if (shot.temporal_model.kind != K::Builtin)
    throw UnsupportedError("temporal model '" + shot.temporal_model.spec +
                           "': Stable Video Diffusion is not wired into rendering yet; use `temporal: builtin` "
                           "(keyframes held and cross-faded)");
  GenerationPlan p;
  if (shot.gen_width > 0 && shot.gen_height > 0) {
    p.width = shot.gen_width;
    p.height = shot.gen_height;
  } else {
    std::tie(p.width, p.height) = diffusion_generation_raster(shot.preset, native_size_of(shot.keyframe_model.path));
  }
  p.fps = shot.fps;  // stills: no retiming needed
  p.frames = std::max<int64_t>(1, shot.frames);
  p.keyframes = std::max<int>(1, static_cast<int>(shot.keyframes.size()));
  p.segments = 1;
  p.batch_frames = std::max(1, shot.motion.decode_chunk);
  return p;
}

Conditioning DiffusionRenderer::encode_text(ShotJob job, StageContext& ctx) {
  cache_->sd(ctx.shot().keyframe_model.path, ctx.device().torch_device());
  ctx.progress(1, 1);
  Conditioning c;
  c.job = std::move(job);
  return c;
}

static stages::Frame to_frame(const at::Tensor& img) {  // [3,H,W] in [0,1]
  auto u8 = img.mul(255).round().clamp(0, 255).to(torch::kByte).permute({1, 2, 0}).contiguous();
  stages::Frame f(static_cast<int>(u8.size(1)), static_cast<int>(u8.size(0)));
  std::memcpy(f.rgb.data(), u8.data_ptr(), f.rgb.size());
  return f;
}

KeyframeLatents DiffusionRenderer::keyframes(Conditioning cond, StageContext& ctx) {
  const auto& shot = ctx.shot();
  const auto& plan = ctx.plan();
  auto model = cache_->sd(shot.keyframe_model.path, ctx.device().torch_device());
  std::lock_guard<std::mutex> g(cache_->lock_for(model.get()));
  const int k_count = plan.keyframes;
  std::vector<at::Tensor> latents, images;
  for (int k = 0; k < k_count; ++k) {
    const auto& kf = shot.keyframes.at(static_cast<size_t>(k));
    stages::KeyframeRequest r;
    r.prompt = kf.prompt.empty() ? shot.prompt : kf.prompt;
    r.negative_prompt = kf.negative_prompt.empty() ? shot.negative_prompt : kf.negative_prompt;
    r.width = plan.width;
    r.height = plan.height;
    r.steps = shot.sampler.steps;
    r.guidance = shot.sampler.guidance;
    r.sampler = shot.sampler.name;
    r.sigma_schedule = shot.sampler.sigma_schedule;
    r.clip_skip = shot.sampler.clip_skip;
    r.seed = derive_seed(shot.seed, SeedStream::KeyframeLatents, static_cast<uint64_t>(k));
    if (kf.image) {
      auto img = stages::read_image(*kf.image);
      r.init_image = stages::image_to_tensor(img.rgb, img.width, img.height, plan.width, plan.height);
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
    auto png = shot.output.parent_path() / (shot.output.stem().string() + ".keyframe" + std::to_string(k) + ".png");
    fs::create_directories(png.parent_path());
    stages::write_png(out.images.back(), png);
  }
  return out;
}

SegmentLatents DiffusionRenderer::temporal(const KeyframeLatents& kf, int segment, const SegmentLatents*,
                                           StageContext& ctx) {
  (void)kf;
  SegmentLatents s;
  s.header = {ctx.shot().id, 0, 0};
  s.segment = segment;
  s.first_frame = 0;
  s.frames = ctx.plan().frames;
  s.latents = torch::zeros({0});
  ctx.progress(1, 1);
  return s;
}

FrameBatch DiffusionRenderer::decode(const ShotLatents& latents, int batch, StageContext& ctx) {
  const auto& shot = ctx.shot();
  const auto& plan = ctx.plan();
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

}  // namespace clipgen::pipeline
