// The renderer for shots whose keyframe model is a Stable Diffusion model (a diffusers pipeline folder
// or a single-file .safetensors checkpoint): keyframes come from stages/keyframe (txt2img, or img2img
// when the keyframe has an image).
//
// Temporal stage: with `temporal: builtin` (the default until clipgen's own video model exists) the
// shot is made of its keyframes held on screen, cross-faded over `motion.transition_frames` at each
// keyframe change — honest stills, no invented motion. A Stable Video Diffusion temporal model is
// not wired into this renderer yet (plan() refuses it with a clear error).
//
// Stage mapping (pipeline/renderer.h):
//   encode_text: loads (or reuses) the model on the stage's device; conditioning is computed inside the
//                keyframe stage (diffusers' encode_prompt), so Conditioning carries no tensors
//   keyframes:   one generate_keyframe() per keyframe, seed derive_seed(shot.seed, KeyframeLatents, k);
//                latents [K,4,h,w]; extra "images" [K,3,H,W] in [0,1]; keyframe PNGs beside the output
//   temporal:    (builtin) nothing to generate: one segment covering the shot
//   decode:      frames composed from the keyframe images
// Models stay resident per device and path (ModelCache) and are reused across shots.
#pragma once
#include <map>
#include <memory>
#include <mutex>

#include "pipeline/renderer.h"
#include "stages/keyframe.h"

namespace clipgen::pipeline {

// Loaded models, one per (model path, device), shared by every shot that names them.
class ModelCache {
public:
  std::shared_ptr<stages::SDModel> sd(const std::filesystem::path& path, const c10::Device& device);
  // A model call must hold the model's lock (modules keep no per-call state, but LibTorch modules
  // are not documented as thread-safe).
  std::mutex& lock_for(const stages::SDModel* m);

private:
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<stages::SDModel>> sd_;
  std::map<const void*, std::unique_ptr<std::mutex>> locks_;
};

// The generation raster for a model of native size `native` (pixels) in the preset's aspect:
// SD 1.x/2.x keep the short side at `native` (512×896 for a vertical short); SDXL-class models
// (native ≥ 1024) keep the pixel area (768×1344). Sides are multiples of 64 (8 for tiny models).
std::pair<int, int> diffusion_generation_raster(const configs::Preset& preset, int64_t native);

class DiffusionRenderer final : public ShotRenderer {
public:
  explicit DiffusionRenderer(std::shared_ptr<ModelCache> cache) : cache_(std::move(cache)) {}
  std::string name() const override { return "sd-keyframes-v1"; }
  GenerationPlan plan(const configs::Shot& shot) const override;
  Conditioning encode_text(ShotJob job, StageContext& ctx) override;
  KeyframeLatents keyframes(Conditioning cond, StageContext& ctx) override;
  SegmentLatents temporal(const KeyframeLatents& kf, int segment, const SegmentLatents* previous,
                          StageContext& ctx) override;
  FrameBatch decode(const ShotLatents& latents, int batch, StageContext& ctx) override;

private:
  std::shared_ptr<ModelCache> cache_;
};

}  // namespace clipgen::pipeline
