#include "stages/segments.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "configs/shot.h"
#include "core/error.h"
#include "models/rng.h"

namespace clipgen::stages {

const char* to_string(ConditionSource s) {
  switch (s) {
    case ConditionSource::Keyframe:
      return "keyframe";
    case ConditionSource::PreviousSegment:
      return "previous segment";
  }
  return "?";
}

static void validate(const SegmentPlanOptions& o) {
  if (o.total_frames < 1)
    throw UsageError(fmt::format("segment plan: total_frames must be at least 1 (got {})", o.total_frames));
  if (o.num_frames < 2) throw UsageError(fmt::format("motion.num_frames must be at least 2 (got {})", o.num_frames));
  if (o.overlap < 0) throw UsageError(fmt::format("motion.overlap must be ≥ 0 (got {})", o.overlap));
  if (o.transition_frames < 0)
    throw UsageError(fmt::format("motion.transition_frames must be ≥ 0 (got {})", o.transition_frames));
  if (o.continuity < 0 || o.continuity > 1)
    throw UsageError(fmt::format("motion.continuity must be in [0, 1] (got {})", o.continuity));
  // The second segment of a section starts num_frames − overlap after the first; the first's blend window
  // (up to max(overlap, transition)) must end before it, and a pulled-back last segment must still reach
  // the next keyframe's transition window. Both hold when this does:
  const int need = o.overlap + o.transition_frames + std::max(o.overlap, o.transition_frames);
  if (o.num_frames < need)
    throw UsageError(
        fmt::format("motion.num_frames {} is too short for overlap {} and transition_frames {}: need at "
                    "least overlap + transition_frames + max(overlap, transition_frames) = {}",
                    o.num_frames, o.overlap, o.transition_frames, need));
  if (o.keyframe_frames.empty() || o.keyframe_frames.front() != 0)
    throw UsageError("segment plan: the first keyframe must be at frame 0");
  for (size_t k = 1; k < o.keyframe_frames.size(); ++k) {
    if (o.keyframe_frames[k] <= o.keyframe_frames[k - 1])
      throw UsageError(
          fmt::format("segment plan: keyframe {} (generation frame {}) is not after keyframe {} (frame {})", k,
                      o.keyframe_frames[k], k - 1, o.keyframe_frames[k - 1]));
    if (o.keyframe_frames[k] >= o.total_frames)
      throw UsageError(fmt::format("segment plan: keyframe {} at generation frame {} is past the shot's last frame {}",
                                   k, o.keyframe_frames[k], o.total_frames - 1));
  }
}

SegmentPlan plan_segments(const SegmentPlanOptions& opt) {
  validate(opt);
  SegmentPlan plan;
  plan.options = opt;
  auto& segs = plan.segments;
  const int64_t F = opt.num_frames, o = opt.overlap, T = opt.total_frames;
  const auto& p = opt.keyframe_frames;
  const size_t K = p.size();
  auto section_end = [&](size_t k) { return k + 1 < K ? p[k + 1] : T; };
  auto window_of = [&](size_t k) {  // transition window at the start of section k
    return k == 0 ? int64_t{0} : std::min<int64_t>(opt.transition_frames, section_end(k) - p[k]);
  };

  for (size_t k = 0; k < K; ++k) {
    const int64_t end = section_end(k);
    const int64_t reach = end + (k + 1 < K ? window_of(k + 1) : 0);  // frames this section's chain must produce
    PlannedSegment first;
    first.index = static_cast<int>(segs.size());
    first.keyframe = static_cast<int>(k);
    first.first_frame = p[k];
    first.num_frames = F;
    first.source = ConditionSource::Keyframe;
    first.previous = first.index - 1;
    first.blend_in = window_of(k);
    first.transition = k > 0;
    if (k > 0 && opt.continuity > 0) {
      first.continuity = opt.continuity;
      first.continuity_frame = p[k] - segs.back().first_frame;  // what the previous chain shows at p_k
    }
    segs.push_back(first);
    while (segs.back().first_frame + F < reach) {
      const PlannedSegment& cur = segs.back();
      // Chain step, pulled back so that the blend window ends by the next keyframe.
      const int64_t s = std::min(cur.first_frame + F - o, end - o);
      if (s < cur.first_frame + cur.blend_in || s <= cur.first_frame)
        throw Error(
            fmt::format("segment plan: internal error placing a segment at {} after one at {}", s, cur.first_frame));
      PlannedSegment next;
      next.index = static_cast<int>(segs.size());
      next.keyframe = static_cast<int>(k);
      next.first_frame = s;
      next.num_frames = F;
      next.source = ConditionSource::PreviousSegment;
      next.previous = cur.index;
      // The previous segment's frame where this one starts (overlap ≥ 1), else its last frame.
      next.condition_frame = o > 0 ? s - cur.first_frame : s - cur.first_frame - 1;
      next.blend_in = o;
      segs.push_back(next);
    }
  }
  for (size_t i = 0; i < segs.size(); ++i) {
    const int64_t end = i + 1 < segs.size() ? segs[i + 1].first_frame + segs[i + 1].blend_in : T;
    segs[i].length = end - segs[i].first_frame;
    if (segs[i].length < 1 || segs[i].length > F)
      throw Error(fmt::format("segment plan: internal error: segment {} uses {} frames of {}", i, segs[i].length, F));
  }
  return plan;
}

std::vector<FrameSource> SegmentPlan::sources(int64_t frame) const {
  if (frame < 0 || frame >= options.total_frames)
    throw UsageError(fmt::format("frame {} is outside the shot (0 … {})", frame, options.total_frames - 1));
  // The last segment starting at or before `frame`.
  auto it = std::upper_bound(segments.begin(), segments.end(), frame,
                             [](int64_t f, const PlannedSegment& s) { return f < s.first_frame; });
  const PlannedSegment& b = *std::prev(it);
  const int64_t i = frame - b.first_frame;
  if (i < b.blend_in && b.previous >= 0) {
    const double wb = double(i + 1) / double(b.blend_in + 1);
    const PlannedSegment& a = segments[static_cast<size_t>(b.previous)];
    return {{a.index, frame - a.first_frame, 1.0 - wb}, {b.index, i, wb}};
  }
  return {{b.index, i, 1.0}};
}

std::vector<int> SegmentPlan::segments_for_range(int64_t first, int64_t count) const {
  std::vector<int> out;
  for (const auto& s : segments)
    if (s.first_frame < first + count && s.end_frame() > first) out.push_back(s.index);
  return out;
}

std::string SegmentPlan::describe() const {
  std::string s = fmt::format("{} frames, {} segments of {} (overlap {}, transition {})\n", options.total_frames,
                              segments.size(), options.num_frames, options.overlap, options.transition_frames);
  for (const auto& g : segments) {
    s += fmt::format("  segment {:>3}  keyframe {:>2}  frames {:>5} … {:>5}  ", g.index, g.keyframe, g.first_frame,
                     g.end_frame() - 1);
    if (g.source == ConditionSource::Keyframe)
      s += fmt::format("from keyframe {}", g.keyframe);
    else
      s += fmt::format("from segment {} frame {}", g.previous, g.condition_frame);
    if (g.blend_in > 0) s += fmt::format(", {} {} frames", g.transition ? "transition" : "overlap", g.blend_in);
    if (g.continuity > 0)
      s += fmt::format(", continuity {} from segment {} frame {}", g.continuity, g.previous, g.continuity_frame);
    s += "\n";
  }
  return s;
}

int64_t generation_frames(int64_t output_frames, int num, int den, double generation_fps) {
  if (num <= 0 || den <= 0 || !(generation_fps > 0))
    throw UsageError(fmt::format("invalid frame rates: output {}/{}, generation {}", num, den, generation_fps));
  const long double x = static_cast<long double>(output_frames) * generation_fps * den / num;
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(x - 1e-9L)));
}

int64_t generation_frame_of(int64_t output_frame, int num, int den, double generation_fps) {
  if (num <= 0 || den <= 0 || !(generation_fps > 0))
    throw UsageError(fmt::format("invalid frame rates: output {}/{}, generation {}", num, den, generation_fps));
  return static_cast<int64_t>(std::llround(static_cast<long double>(output_frame) * generation_fps * den / num));
}

SegmentPlanOptions segment_options(const configs::Shot& shot, int model_frames) {
  SegmentPlanOptions o;
  const auto& m = shot.motion;
  o.total_frames = generation_frames(shot.frames, shot.fps.num, shot.fps.den, m.generation_fps);
  o.num_frames = m.num_frames > 0 ? m.num_frames : model_frames;
  o.overlap = m.overlap;
  o.transition_frames = m.transition_frames;
  o.continuity = m.continuity;
  o.keyframe_frames.clear();
  for (size_t k = 0; k < shot.keyframes.size(); ++k) {
    const auto& kf = shot.keyframes[k];
    const int64_t g =
        std::min(generation_frame_of(kf.frame, shot.fps.num, shot.fps.den, m.generation_fps), o.total_frames - 1);
    if (k == 0 && g != 0)
      throw ConfigError(shot.source_file.string(), kf.line, 0, "the first keyframe must be at the start of the shot");
    if (k > 0 && g <= o.keyframe_frames.back())
      throw ConfigError(
          shot.source_file.string(), kf.line, 0,
          fmt::format("keyframes {} and {} (output frames {} and {}) fall on the same generated frame {} at "
                      "motion.generation_fps {}: move them apart or raise generation_fps",
                      k - 1, k, shot.keyframes[k - 1].frame, kf.frame, g, m.generation_fps));
    o.keyframe_frames.push_back(g);
  }
  if (o.keyframe_frames.empty()) o.keyframe_frames.push_back(0);
  return o;
}

uint64_t segment_seed(uint64_t shot_seed, int index) {
  return derive_seed(shot_seed, SeedStream::SegmentLatents, static_cast<uint64_t>(index));
}

// ---------------------------------------------------------------------------------------------------------------

at::Tensor assemble_range(const SegmentPlan& plan, int64_t first, int64_t count,
                          const std::function<at::Tensor(int segment, int64_t local_first, int64_t n)>& fetch) {
  const int64_t T = plan.total_frames();
  if (first < 0 || count < 1 || first + count > T)
    throw UsageError(
        fmt::format("assemble: frames [{}, {}) are outside the shot's {} frames", first, first + count, T));
  at::Tensor out;
  for (int si : plan.segments_for_range(first, count)) {
    const PlannedSegment& seg = plan.segments[static_cast<size_t>(si)];
    const int64_t lo = std::max(first, seg.first_frame), hi = std::min(first + count, seg.end_frame());
    const int64_t n = hi - lo;
    at::Tensor part = fetch(si, lo - seg.first_frame, n);
    if (!part.defined() || part.dim() < 1 || part.size(0) != n)
      throw UsageError(fmt::format("assemble: segment {} gave {} frames where {} were asked for", si,
                                   part.defined() && part.dim() > 0 ? part.size(0) : 0, n));
    if (!part.is_floating_point())
      throw UsageError("assemble: segment frames must be floating point (blending), got " +
                       std::string(c10::toString(part.scalar_type())));
    if (!out.defined()) {
      auto shape = part.sizes().vec();
      shape[0] = count;
      out = torch::zeros(shape, part.options());  // [count, ...]
    } else if (part.sizes().slice(1) != out.sizes().slice(1)) {
      throw UsageError(fmt::format("assemble: segment {} frames have shape {}, earlier segments {}", si,
                                   fmt::join(part.sizes().slice(1), "x"), fmt::join(out.sizes().slice(1), "x")));
    }
    // Per-frame weight of this segment in [lo, hi).
    std::vector<double> w(static_cast<size_t>(n), 0.0);
    for (int64_t g = lo; g < hi; ++g)
      for (const auto& src : plan.sources(g))
        if (src.segment == si) w[static_cast<size_t>(g - lo)] = src.weight;
    std::vector<int64_t> wshape(static_cast<size_t>(part.dim()), 1);
    wshape[0] = n;
    auto wt = torch::tensor(w, torch::kDouble).to(part.device(), part.scalar_type()).reshape(wshape);  // [n,1,…]
    out.narrow(0, lo - first, n).add_(part * wt);
  }
  return out;
}

at::Tensor assemble_frames(const SegmentPlan& plan, const std::vector<at::Tensor>& segment_frames) {
  if (segment_frames.size() != plan.segments.size())
    throw UsageError(fmt::format("assemble: {} segment outputs for a plan of {} segments", segment_frames.size(),
                                 plan.segments.size()));
  return assemble_range(plan, 0, plan.total_frames(), [&](int s, int64_t local, int64_t n) {
    const auto& t = segment_frames[static_cast<size_t>(s)];
    if (!t.defined() || t.dim() < 1 || t.size(0) < local + n)
      throw UsageError(fmt::format("assemble: segment {} has {} frames; the plan uses frames up to {}", s,
                                   t.defined() && t.dim() > 0 ? t.size(0) : 0, local + n - 1));
    return t.narrow(0, local, n);
  });
}

}  // namespace clipgen::stages
