// The renderer for shots whose keyframe model is a Stable Diffusion model (a diffusers pipeline folder
// or a single-file .safetensors checkpoint): keyframes come from stages/keyframe (txt2img, or img2img
// when the keyframe has an image).
//
// Temporal stage, two modes:
//  - `temporal: builtin` (no video model): the shot is made of its keyframes held on screen, cross-faded
//    over `motion.transition_frames` at each keyframe change — honest stills, no invented motion;
//  - a Stable Video Diffusion folder (SVD, SVD-XT): the shot is planned into segments
//    (stages/segments.h, docs/temporal.md), each one stages::generate_segment run conditioned on its
//    keyframe or on the previous segment's frame where it starts, blended at overlaps and transitions.
//
// Rasters: the generation raster (what decode produces) is the video model's (SVD keeps its native
// pixel area, 1024×576 in 16:9 or 576×1024 for a vertical short) or, for builtin, the keyframe model's;
// keyframes are generated at the keyframe model's own raster (`keyframe_raster`) and resized to the
// segment raster by the temporal stage. `size:` in the shot sets both.
//
// Stage mapping (pipeline/renderer.h):
//   encode_text: loads (or reuses) the models on the stage's device; conditioning is computed inside the
//                keyframe stage (diffusers' encode_prompt), so Conditioning carries no tensors
//   keyframes:   one generate_keyframe() per keyframe, seed derive_seed(shot.seed, KeyframeLatents, k);
//                latents [K,4,h,w]; extra "images" [K,3,H,W] in [0,1]; keyframe PNGs beside the output
//   temporal:    builtin: one empty segment covering the shot. SVD: segment s of the plan, seed
//                segment_seed(shot.seed, s); latents [F,4,h,w] and extra "frames" uint8 [F,H,W,3] — the
//                segment is decoded here (decode_chunk frames per VAE call) because the next chained
//                segment is conditioned on one of its decoded frames
//   decode:      builtin: frames composed from the keyframe images; SVD: segment frames blended per the
//                plan (stages::assemble_range)
// Models stay resident per device and path (ModelCache) and are reused across shots.
#pragma once
#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pipeline/renderer.h"
#include "stages/keyframe.h"
#include "stages/segments.h"
#include "stages/temporal.h"

namespace clipgen::pipeline {

// Loaded models, one per (model reference, device, dtype), shared by every shot that names them. The key is
// the canonical path plus, for single files, the original_config and settings (ModelRef::to_json()), so the
// same file named with other settings is another model; the same model in another precision is another too.
// At most `max_per_device` models (keyframe and temporal together) stay resident per device: before a new
// one loads, the least recently used models no shot holds are released. Models in use are never released,
// so a shot needing more than the limit still runs (the limit is exceeded until they are free).
class ModelCache {
public:
  explicit ModelCache(size_t max_per_device = 2) : max_per_device_(std::max<size_t>(1, max_per_device)) {}
  // `vae`: the shot's models.vae, replacing the model's VAE (part of the cache key).
  // `dtype`: the weights' precision (resolve_precision of the shot's `precision`; see SDModel::to).
  std::shared_ptr<stages::SDModel> sd(const configs::ModelRef& model, const c10::Device& device,
                                      c10::ScalarType dtype = c10::kFloat,
                                      const std::optional<configs::ModelRef>& vae = std::nullopt);
  std::shared_ptr<stages::SVDModel> svd(const std::filesystem::path& path, const c10::Device& device,
                                        c10::ScalarType dtype = c10::kFloat);
  // A model call must hold the model's lock (modules keep no per-call state, but LibTorch modules
  // are not documented as thread-safe).
  std::mutex& lock_for(const void* model);
  // The keys of the resident models on `device` ("cpu", "cuda:0"), least recently used first.
  std::vector<std::string> resident(const std::string& device) const;

private:
  // The model under `key`, loaded by load() and moved to `device` in `dtype` on first use (defined in the .cpp).
  template <typename Model, typename Load>
  std::shared_ptr<Model> get(const std::string& key, const c10::Device& device, c10::ScalarType dtype, Load&& load);
  // Releases least recently used models on `device` that no shot holds until one more fits (mutex_ held).
  void make_room(const std::string& device);

  struct Entry {
    std::string device;
    uint64_t last_use = 0;
    std::shared_ptr<void> model;  // a stages::SDModel or stages::SVDModel (the key says which)
  };
  size_t max_per_device_;
  mutable std::mutex mutex_;
  uint64_t clock_ = 0;
  std::map<std::string, Entry> models_;
  std::map<const void*, std::unique_ptr<std::mutex>> locks_;
};

// The generation raster for a model of native size `native` (pixels) in the preset's aspect:
// SD 1.x/2.x keep the short side at `native` (512×896 for a vertical short); SDXL-class models
// (native ≥ 1024) keep the pixel area (768×1344). Sides are multiples of 64 (8 for tiny models).
// `multiple`: what the sides must be multiples of below 512 (VAE factor × 2^(UNet levels − 1); 8 at least).
std::pair<int, int> diffusion_generation_raster(const configs::Preset& preset, int64_t native, int multiple = 8);
// The segment raster of an image-to-video model of native size `native` (SVD: UNet sample_size × VAE
// factor = 768): the pixel area native² in the preset's aspect (1024×576 for 16:9, 576×1024 for 9:16),
// sides rounded down to multiples of `multiple` (what the UNet needs: VAE factor × 2^(UNet levels − 1)).
std::pair<int, int> video_generation_raster(const configs::Preset& preset, int64_t native, int multiple = 64);
// The raster keyframes are generated at: `size:` when the shot sets it, else the keyframe model's
// native size in the preset's aspect (reads model configs only).
std::pair<int, int> keyframe_raster(const configs::Shot& shot);

class DiffusionRenderer final : public ShotRenderer {
public:
  explicit DiffusionRenderer(std::shared_ptr<ModelCache> cache) : cache_(std::move(cache)) {}
  std::string precision_on(const configs::Shot& shot, const Device& device) const override;
  std::string name() const override { return "sd-keyframes-v1"; }
  GenerationPlan plan(const configs::Shot& shot) const override;
  Conditioning encode_text(ShotJob job, StageContext& ctx) override;
  KeyframeLatents keyframes(Conditioning cond, StageContext& ctx) override;
  SegmentLatents temporal(const KeyframeLatents& kf, int segment, const SegmentLatents* previous,
                          StageContext& ctx) override;
  FrameBatch decode(const ShotLatents& latents, int batch, StageContext& ctx) override;

private:
  // The shot's keyframe model on the stage's device (loaded once per path and device).
  std::shared_ptr<stages::SDModel> keyframe_model(const configs::Shot& shot, const StageContext& ctx) const;
  // Keyframe seg.keyframe remade by img2img (strength motion.continuity) from `previous`'s frame
  // seg.continuity_frame: [1, 3, h, w] in [0, 1] at the keyframe raster; also rewrites its PNG.
  at::Tensor continuity_keyframe(const KeyframeLatents& kf, const stages::PlannedSegment& seg,
                                 const SegmentLatents& previous, StageContext& ctx);
  FrameBatch decode_segments(const ShotLatents& latents, int batch, StageContext& ctx);

  std::shared_ptr<ModelCache> cache_;
};

}  // namespace clipgen::pipeline
