#include "pipeline/procedural_renderer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "pipeline/graph.h"
#include "stages/procedural.h"

namespace clipgen::pipeline {

std::pair<int, int> default_generation_raster(const configs::Preset& preset, int long_side) {
  const double w = preset.width, h = preset.height;
  const double s = long_side / std::max(w, h);
  auto r8 = [](double v) { return std::max(8, static_cast<int>(std::lround(v / 8.0)) * 8); };
  return {r8(w * s), r8(h * s)};
}

int64_t generation_frames(const configs::Shot& shot, configs::Rational gen_fps) {
  // frames * (gn/gd) / (on/od), rounded up, in integers.
  const __int128 num = static_cast<__int128>(shot.frames) * gen_fps.num * shot.fps.den;
  const __int128 den = static_cast<__int128>(gen_fps.den) * shot.fps.num;
  if (den <= 0) return 1;
  return std::max<int64_t>(1, static_cast<int64_t>((num + den - 1) / den));
}

GenerationPlan ProceduralRenderer::plan(const configs::Shot& shot) const {
  GenerationPlan p;
  if (shot.gen_width > 0 && shot.gen_height > 0) {
    p.width = shot.gen_width;
    p.height = shot.gen_height;
  } else {
    std::tie(p.width, p.height) = default_generation_raster(shot.preset);
  }
  p.fps = configs::Rational{shot.motion.generation_fps > 0 ? shot.motion.generation_fps : 8, 1};
  p.frames = generation_frames(shot, p.fps);
  p.keyframes = std::max<int>(1, static_cast<int>(shot.keyframes.size()));
  const int64_t per_segment =
      std::max(1, shot.motion.num_frames > 0 ? shot.motion.num_frames : configs::Motion::kBuiltinSegmentFrames);
  p.segments = static_cast<int>((p.frames + per_segment - 1) / per_segment);
  p.batch_frames = std::max(1, shot.motion.decode_chunk);
  return p;
}

Conditioning ProceduralRenderer::encode_text(ShotJob job, StageContext& ctx) {
  const auto& shot = ctx.shot();
  const int k = ctx.plan().keyframes;
  auto params = torch::empty({k, stages::SceneParams::kCount}, torch::kFloat);  // [K, 8]
  for (int i = 0; i < k; ++i) {
    const std::string& prompt =
        i < static_cast<int>(shot.keyframes.size()) && !shot.keyframes[static_cast<size_t>(i)].prompt.empty()
            ? shot.keyframes[static_cast<size_t>(i)].prompt
            : shot.prompt;
    const auto a = stages::ProceduralScene::params_for_prompt(prompt, shot.seed).to_array();
    for (int j = 0; j < stages::SceneParams::kCount; ++j) params[i][j] = a[static_cast<size_t>(j)];
  }
  ctx.progress(1, 1);
  Conditioning c;
  c.job = std::move(job);
  c.tensors["params"] = params;
  return c;
}

KeyframeLatents ProceduralRenderer::keyframes(Conditioning cond, StageContext& ctx) {
  const auto& shot = ctx.shot();
  const auto& plan = ctx.plan();
  KeyframeLatents kf;
  kf.job = std::move(cond.job);
  kf.latents = std::move(cond.tensors.at("params"));  // [K, 8]
  auto frames = torch::empty({plan.keyframes}, torch::kInt64);
  for (int i = 0; i < plan.keyframes; ++i) {
    const double at = i < static_cast<int>(shot.keyframes.size()) ? shot.keyframes[static_cast<size_t>(i)].at_seconds : 0;
    frames[i] = static_cast<int64_t>(std::llround(at * plan.fps.value()));
  }
  kf.extra["frame"] = frames;
  ctx.progress(plan.keyframes, plan.keyframes);
  return kf;
}

SegmentLatents ProceduralRenderer::temporal(const KeyframeLatents& kf, int segment, const SegmentLatents*,
                                            StageContext& ctx) {
  const auto& plan = ctx.plan();
  const int64_t per = std::max(1, ctx.shot().motion.num_frames > 0 ? ctx.shot().motion.num_frames
                                                                    : configs::Motion::kBuiltinSegmentFrames);
  SegmentLatents seg;
  seg.header = kf.job.header;
  seg.segment = segment;
  seg.first_frame = segment * per;
  seg.frames = std::min<int64_t>(per, plan.frames - seg.first_frame);
  const double transition = std::max(1, ctx.shot().motion.transition_frames);
  const auto pal = kf.latents.contiguous();              // [K, 8]
  const auto at = kf.extra.at("frame").contiguous();     // [K]
  const int k = static_cast<int>(pal.size(0));
  auto out = torch::empty({seg.frames, stages::SceneParams::kCount + 1}, torch::kFloat);  // [F, 8 + time]
  auto acc = out.accessor<float, 2>();
  const float* pp = pal.data_ptr<float>();
  const int64_t* ap = at.data_ptr<int64_t>();
  for (int64_t i = 0; i < seg.frames; ++i) {
    const int64_t f = seg.first_frame + i;
    auto p = stages::SceneParams::from_array(pp);
    for (int j = 1; j < k; ++j) {
      const float w = stages::transition_weight(static_cast<double>(f), static_cast<double>(ap[j]), transition);
      if (w > 0) p = stages::blend(p, stages::SceneParams::from_array(pp + j * stages::SceneParams::kCount), w);
    }
    const auto a = p.to_array();
    for (int j = 0; j < stages::SceneParams::kCount; ++j) acc[i][j] = a[static_cast<size_t>(j)];
    acc[i][stages::SceneParams::kCount] = static_cast<float>(static_cast<double>(f) / plan.fps.value());
  }
  seg.latents = std::move(out);
  return seg;
}

FrameBatch ProceduralRenderer::decode(const ShotLatents& latents, int batch, StageContext& ctx) {
  const auto& plan = ctx.plan();
  const stages::ProceduralScene scene(ctx.shot().seed);
  FrameBatch b;
  b.batch = batch;
  b.first_frame = static_cast<int64_t>(batch) * plan.batch_frames;
  const int64_t end = std::min<int64_t>(plan.frames, b.first_frame + plan.batch_frames);
  for (int64_t f = b.first_frame; f < end; ++f) {
    ctx.throw_if_cancelled();
    const SegmentLatents* seg = nullptr;
    for (const auto& s : latents.segments)
      if (f >= s.first_frame && f < s.first_frame + s.frames) seg = &s;
    if (!seg) throw Error("procedural decode: no segment covers frame " + std::to_string(f));
    const auto row = seg->latents[f - seg->first_frame].contiguous();  // [9]
    const float* v = row.data_ptr<float>();
    b.frames.push_back(scene.render(stages::SceneParams::from_array(v), v[stages::SceneParams::kCount], plan.width,
                                    plan.height));
  }
  return b;
}

}  // namespace clipgen::pipeline
