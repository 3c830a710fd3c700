// Segment planning for shots longer than one temporal-model run, and for shots with several keyframes
// (docs/temporal.md has the rules and a diagram).
//
// A shot needs `total_frames` frames at the generation fps. One model run (a *segment*) makes
// `num_frames` frames. Keyframe k (at generation frame p_k, p_0 = 0) opens *section* k, which lasts until
// the next keyframe. Each section is covered by a chain of segments:
//  - the section's first segment starts at p_k and is conditioned on keyframe k's image; for k ≥ 1 its
//    first `transition_frames` frames are crossfaded with the previous section (a keyframe transition);
//  - each further segment starts num_frames − overlap frames after the previous one (the last one of a
//    section is pulled back so its blend window ends before the next keyframe) and is conditioned on the
//    previous segment's frame at its own start — so both segments start the shared frames from the same
//    picture; its first `overlap` frames are crossfaded with the previous segment.
// In a blend window of w frames starting at segment B's first frame, B's frame i has weight (i+1)/(w+1)
// and the earlier segment A the rest: every shot frame has one or two sources whose weights sum to 1.
// Frames a segment generates beyond the next segment's blend window are not used.
//
// The plan is pure arithmetic (no torch, no model): deterministic in its options.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace clipgen::configs {
struct Shot;
}

namespace clipgen::stages {

struct SegmentPlanOptions {
  int64_t total_frames = 0;   // frames to generate, at the generation fps (≥ 1)
  int num_frames = 14;        // frames per model run
  int overlap = 2;            // frames crossfaded between chained segments
  int transition_frames = 4;  // frames crossfaded at a keyframe change
  double continuity = 0.0;    // img2img strength for keyframes k ≥ 1 (recorded for the keyframe stage)
  std::vector<int64_t> keyframe_frames = {0};  // generation-fps frame of each keyframe: strictly increasing, first 0
};

enum class ConditionSource { Keyframe, PreviousSegment };
const char* to_string(ConditionSource s);

struct PlannedSegment {
  int index = 0;            // position in SegmentPlan::segments (also the segment's seed index)
  int keyframe = 0;         // section (keyframe index) the segment belongs to
  int64_t first_frame = 0;  // shot frame of the segment's output frame 0
  int64_t num_frames = 0;   // frames the model generates
  int64_t length = 0;       // frames used: [first_frame, first_frame + length) ⊆ the shot
  ConditionSource source = ConditionSource::Keyframe;
  int previous = -1;  // the segment before (−1 for segment 0)
  // PreviousSegment: conditioning image = `previous`'s output frame `condition_frame` (local index).
  int64_t condition_frame = -1;
  // Frames [first_frame, first_frame + blend_in) are crossfaded with `previous` (0 for segment 0).
  int64_t blend_in = 0;
  bool transition = false;  // the blend is a keyframe transition (else a chain overlap)
  // Keyframe segments with k ≥ 1 and continuity > 0: the keyframe stage makes keyframe k by img2img with
  // this strength from `previous`'s output frame `continuity_frame` (the frame shown at p_k).
  double continuity = 0.0;
  int64_t continuity_frame = -1;

  int64_t end_frame() const { return first_frame + length; }  // one past the last used frame
};

// One contribution to a shot frame: output frame `local` of segment `segment`, with `weight`.
struct FrameSource {
  int segment = 0;
  int64_t local = 0;
  double weight = 1.0;
};

struct SegmentPlan {
  SegmentPlanOptions options;
  std::vector<PlannedSegment> segments;

  int64_t total_frames() const { return options.total_frames; }
  // The one or two sources of shot frame `frame` (0 ≤ frame < total_frames), earlier segment first.
  std::vector<FrameSource> sources(int64_t frame) const;
  // The segments whose output contributes to frames [first, first + count).
  std::vector<int> segments_for_range(int64_t first, int64_t count) const;
  // A multi-line human-readable table (logs, reports, docs).
  std::string describe() const;
};

// Validates the options (UsageError naming the setting) and builds the plan. Requirements:
// num_frames ≥ 2, overlap ≥ 0, transition_frames ≥ 0, num_frames ≥ overlap + transition_frames +
// max(overlap, transition_frames), keyframes strictly increasing from 0 and < total_frames.
SegmentPlan plan_segments(const SegmentPlanOptions& options);

// Frames needed for `output_frames` frames at `output_fps` (num/den) when generating at `generation_fps`:
// ceil(output_frames · generation_fps · den / num), at least 1.
int64_t generation_frames(int64_t output_frames, int output_fps_num, int output_fps_den, double generation_fps);
// The generation-fps frame of output frame `output_frame`: round(output_frame · generation_fps · den / num).
int64_t generation_frame_of(int64_t output_frame, int output_fps_num, int output_fps_den, double generation_fps);

// Plan options from a resolved shot: frames = duration × motion.generation_fps, keyframe positions
// converted to generation frames, num_frames / overlap / transition_frames / continuity from motion.
// Two keyframes that land on the same generation frame are an error naming them.
// `model_frames` is the temporal model's own segment length, used when motion.num_frames is 0.
SegmentPlanOptions segment_options(const configs::Shot& shot, int model_frames = 14);

// The seed of segment `index` of a shot: derive_seed(shot_seed, SeedStream::SegmentLatents, index)
// (docs/seeds.md). Every random draw of that segment comes from one generator with this seed.
uint64_t segment_seed(uint64_t shot_seed, int index);

// ---- assembling a shot's frames from segment outputs ----

// Frames [first, first + count) of the shot, blended per the plan. `fetch(segment, local_first, n)`
// returns n consecutive output frames of a segment ([n, ...], any per-frame layout: pixels [n,3,H,W]
// or latents [n,C,h,w]); it is called once per contributing segment. Returns [count, ...] (float32
// arithmetic in the fetched dtype; uint8 is not accepted).
at::Tensor assemble_range(const SegmentPlan& plan, int64_t first, int64_t count,
                          const std::function<at::Tensor(int segment, int64_t local_first, int64_t n)>& fetch);

// The whole shot: segment_frames[i] is segment i's output [F_i, ...] (F_i ≥ the frames the plan uses).
// Returns [total_frames, ...].
at::Tensor assemble_frames(const SegmentPlan& plan, const std::vector<at::Tensor>& segment_frames);

}  // namespace clipgen::stages
