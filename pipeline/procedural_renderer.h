// The built-in renderer used while clipgen's own diffusion model is untrained: it drives
// stages::ProceduralScene (a procedural landscape, not a diffusion model) through the same four
// device stages a diffusion renderer has, so the graph, checkpoints, post and encode run for real.
//   encode_text: prompt → palette: Conditioning "params" [K, 8]
//   keyframes:   latents = palettes [K, 8]; extra "frame" [K] keyframe positions at the generation fps
//   temporal:    per-frame scene parameters [F, 9] (palette blended across keyframe transitions + time)
//   decode:      draws the frames of a chunk
#pragma once
#include "pipeline/renderer.h"

namespace clipgen::pipeline {

class ProceduralRenderer final : public ShotRenderer {
public:
  std::string name() const override { return "procedural-v1"; }
  GenerationPlan plan(const configs::Shot& shot) const override;
  Conditioning encode_text(ShotJob job, StageContext& ctx) override;
  KeyframeLatents keyframes(Conditioning cond, StageContext& ctx) override;
  SegmentLatents temporal(const KeyframeLatents& kf, int segment, const SegmentLatents* previous,
                          StageContext& ctx) override;
  FrameBatch decode(const ShotLatents& latents, int batch, StageContext& ctx) override;
};

// Generation raster for a shot without an explicit one: the preset's aspect with the long side
// `long_side`, both sides multiples of 8.
std::pair<int, int> default_generation_raster(const configs::Preset& preset, int long_side = 512);

// Generated frames needed so that retiming to the output fps yields at least shot.frames frames:
// ceil(shot.frames * gen_fps / out_fps), at least 1.
int64_t generation_frames(const configs::Shot& shot, configs::Rational gen_fps);

}  // namespace clipgen::pipeline
