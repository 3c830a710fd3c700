// Segment planning (stages/segments.h): boundaries where docs/temporal.md says, blend weights, coverage,
// and assembling a shot's frames from segment outputs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>

#include "configs/shot.h"
#include "core/error.h"
#include "models/rng.h"
#include "stages/segments.h"

using namespace clipgen;
using namespace clipgen::stages;

namespace {

SegmentPlanOptions opts(int64_t total, int F, int overlap, int transition, std::vector<int64_t> kf = {0}) {
  SegmentPlanOptions o;
  o.total_frames = total;
  o.num_frames = F;
  o.overlap = overlap;
  o.transition_frames = transition;
  o.keyframe_frames = std::move(kf);
  return o;
}

struct Expect {
  int64_t first, length;
  ConditionSource source;
  int previous;
  int64_t condition_frame, blend_in;
};

void expect_segments(const SegmentPlan& plan, const std::vector<Expect>& want) {
  ASSERT_EQ(plan.segments.size(), want.size()) << plan.describe();
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& s = plan.segments[i];
    SCOPED_TRACE("segment " + std::to_string(i) + "\n" + plan.describe());
    EXPECT_EQ(s.index, static_cast<int>(i));
    EXPECT_EQ(s.first_frame, want[i].first);
    EXPECT_EQ(s.length, want[i].length);
    EXPECT_EQ(s.source, want[i].source);
    EXPECT_EQ(s.previous, want[i].previous);
    EXPECT_EQ(s.condition_frame, want[i].condition_frame);
    EXPECT_EQ(s.blend_in, want[i].blend_in);
  }
}

// Every invariant the design promises, for any valid plan.
void check_invariants(const SegmentPlan& plan) {
  const auto& o = plan.options;
  SCOPED_TRACE(plan.describe());
  ASSERT_FALSE(plan.segments.empty());
  // Sections start exactly at the keyframes, conditioned on them.
  size_t k = 0;
  for (const auto& s : plan.segments) {
    EXPECT_EQ(s.num_frames, o.num_frames);
    EXPECT_GE(s.length, 1);
    EXPECT_LE(s.length, o.num_frames);
    if (s.source == ConditionSource::Keyframe) {
      ASSERT_LT(k, o.keyframe_frames.size());
      EXPECT_EQ(s.first_frame, o.keyframe_frames[k]);
      EXPECT_EQ(s.keyframe, static_cast<int>(k));
      EXPECT_EQ(s.blend_in, k == 0 ? 0
                                   : std::min<int64_t>(o.transition_frames,
                                                       (k + 1 < o.keyframe_frames.size() ? o.keyframe_frames[k + 1]
                                                                                         : o.total_frames) -
                                                           o.keyframe_frames[k]));
      ++k;
    } else {
      // Chained: conditioned on the previous segment's frame shown where this segment starts.
      ASSERT_GE(s.previous, 0);
      const auto& p = plan.segments[static_cast<size_t>(s.previous)];
      EXPECT_EQ(p.first_frame + s.condition_frame, o.overlap > 0 ? s.first_frame : s.first_frame - 1);
      EXPECT_GE(s.condition_frame, 0);
      EXPECT_LT(s.condition_frame, o.num_frames);
      EXPECT_EQ(s.blend_in, o.overlap);
      EXPECT_EQ(s.keyframe, p.keyframe);
      // A chain segment never crosses into the next section's first frame with its blend window.
      if (static_cast<size_t>(s.keyframe + 1) < o.keyframe_frames.size())
        EXPECT_LE(s.first_frame + s.blend_in, o.keyframe_frames[static_cast<size_t>(s.keyframe + 1)]);
    }
  }
  EXPECT_EQ(k, o.keyframe_frames.size());
  // Each frame: one or two sources, within the segments' used ranges, weights summing to 1; every used
  // frame of every segment is used exactly once (nothing lost, nothing duplicated).
  std::vector<std::vector<int>> used(plan.segments.size());
  for (size_t i = 0; i < plan.segments.size(); ++i) used[i].assign(static_cast<size_t>(plan.segments[i].length), 0);
  for (int64_t g = 0; g < o.total_frames; ++g) {
    auto src = plan.sources(g);
    ASSERT_GE(src.size(), 1u);
    ASSERT_LE(src.size(), 2u);
    double sum = 0;
    for (const auto& s : src) {
      const auto& seg = plan.segments[static_cast<size_t>(s.segment)];
      EXPECT_EQ(seg.first_frame + s.local, g);
      ASSERT_GE(s.local, 0);
      ASSERT_LT(s.local, seg.length);
      EXPECT_GT(s.weight, 0.0);
      EXPECT_LE(s.weight, 1.0);
      sum += s.weight;
      used[static_cast<size_t>(s.segment)][static_cast<size_t>(s.local)]++;
    }
    EXPECT_NEAR(sum, 1.0, 1e-12) << "frame " << g;
    if (src.size() == 2) {
      EXPECT_EQ(plan.segments[static_cast<size_t>(src[1].segment)].previous, src[0].segment);
      EXPECT_LT(src[1].local, plan.segments[static_cast<size_t>(src[1].segment)].blend_in);
    }
  }
  for (size_t i = 0; i < used.size(); ++i)
    for (size_t l = 0; l < used[i].size(); ++l) EXPECT_EQ(used[i][l], 1) << "segment " << i << " frame " << l;
  EXPECT_EQ(plan.segments.back().end_frame(), o.total_frames);
}

}  // namespace

TEST(SegmentPlan, ShortShotIsOneSegment) {
  auto plan = plan_segments(opts(10, 14, 2, 4));
  expect_segments(plan, {{0, 10, ConditionSource::Keyframe, -1, -1, 0}});
  check_invariants(plan);
  plan = plan_segments(opts(14, 14, 2, 4));  // exactly one model run
  expect_segments(plan, {{0, 14, ConditionSource::Keyframe, -1, -1, 0}});
  check_invariants(plan);
}

TEST(SegmentPlan, ChainedSegmentsStepByNumFramesMinusOverlap) {
  // 30 frames of 14-frame runs with 2 frames of overlap: starts 0, 12, 24.
  auto plan = plan_segments(opts(30, 14, 2, 4));
  expect_segments(plan, {{0, 14, ConditionSource::Keyframe, -1, -1, 0},
                         {12, 14, ConditionSource::PreviousSegment, 0, 12, 2},
                         {24, 6, ConditionSource::PreviousSegment, 1, 12, 2}});
  check_invariants(plan);
  // One frame more than one run needs a second run.
  plan = plan_segments(opts(15, 14, 2, 4));
  expect_segments(plan,
                  {{0, 14, ConditionSource::Keyframe, -1, -1, 0}, {12, 3, ConditionSource::PreviousSegment, 0, 12, 2}});
  // SVD-XT: 25 frames, overlap 3; 100 frames → starts 0, 22, 44, 66, 88.
  plan = plan_segments(opts(100, 25, 3, 6));
  ASSERT_EQ(plan.segments.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(plan.segments[static_cast<size_t>(i)].first_frame, 22 * i);
  check_invariants(plan);
}

TEST(SegmentPlan, OverlapZeroConditionsOnTheLastFrame) {
  auto plan = plan_segments(opts(20, 8, 0, 0));
  expect_segments(plan, {{0, 8, ConditionSource::Keyframe, -1, -1, 0},
                         {8, 8, ConditionSource::PreviousSegment, 0, 7, 0},
                         {16, 4, ConditionSource::PreviousSegment, 1, 7, 0}});
  check_invariants(plan);
}

TEST(SegmentPlan, TwoKeyframesStartSectionsWithTransitions) {
  // Keyframe 1 at frame 20: section 0 must reach 24 (20 + transition 4).
  auto plan = plan_segments(opts(40, 14, 2, 4, {0, 20}));
  expect_segments(plan, {{0, 14, ConditionSource::Keyframe, -1, -1, 0},
                         {12, 12, ConditionSource::PreviousSegment, 0, 12, 2},
                         {20, 14, ConditionSource::Keyframe, 1, -1, 4},
                         {32, 8, ConditionSource::PreviousSegment, 2, 12, 2}});
  EXPECT_TRUE(plan.segments[2].transition);
  EXPECT_FALSE(plan.segments[1].transition);
  EXPECT_EQ(plan.segments[2].keyframe, 1);
  check_invariants(plan);
  // The crossfade over frames 20..23: keyframe 1's segment fades in 1/5, 2/5, 3/5, 4/5.
  for (int i = 0; i < 4; ++i) {
    auto src = plan.sources(20 + i);
    ASSERT_EQ(src.size(), 2u);
    EXPECT_EQ(src[0].segment, 1);
    EXPECT_EQ(src[1].segment, 2);
    EXPECT_DOUBLE_EQ(src[1].weight, (i + 1) / 5.0);
    EXPECT_EQ(src[0].local, 8 + i);
  }
  EXPECT_EQ(plan.sources(24).size(), 1u);
  EXPECT_EQ(plan.sources(24)[0].segment, 2);
}

TEST(SegmentPlan, LastChainSegmentIsPulledBackBeforeTheKeyframe) {
  // Keyframe 1 at 13: the chain step would put segment 1 at 12 with its overlap window [12, 14) crossing
  // the keyframe; it is pulled back to 11 so that frames 13..16 have only two sources.
  auto plan = plan_segments(opts(30, 14, 2, 4, {0, 13}));
  expect_segments(plan, {{0, 13, ConditionSource::Keyframe, -1, -1, 0},
                         {11, 6, ConditionSource::PreviousSegment, 0, 11, 2},
                         {13, 14, ConditionSource::Keyframe, 1, -1, 4},
                         {25, 5, ConditionSource::PreviousSegment, 2, 12, 2}});
  check_invariants(plan);
}

TEST(SegmentPlan, ShortSectionsClampTheTransition) {
  // Keyframes 2 frames apart: the transition into keyframe 1 lasts 2 frames, into keyframe 2 four.
  auto plan = plan_segments(opts(30, 14, 2, 4, {0, 10, 12}));
  check_invariants(plan);
  EXPECT_EQ(plan.segments[1].first_frame, 10);
  EXPECT_EQ(plan.segments[1].blend_in, 2);
  EXPECT_EQ(plan.segments[2].first_frame, 12);
  EXPECT_EQ(plan.segments[2].blend_in, 4);
  // A keyframe on the last frame.
  plan = plan_segments(opts(20, 14, 2, 4, {0, 19}));
  check_invariants(plan);
  EXPECT_EQ(plan.segments.back().first_frame, 19);
  EXPECT_EQ(plan.segments.back().blend_in, 1);
}

TEST(SegmentPlan, ContinuityIsRecordedForLaterKeyframes) {
  auto o = opts(40, 14, 2, 4, {0, 20});
  o.continuity = 0.35;
  auto plan = plan_segments(o);
  EXPECT_EQ(plan.segments[0].continuity, 0.0);
  EXPECT_EQ(plan.segments[2].continuity, 0.35);
  EXPECT_EQ(plan.segments[2].previous, 1);
  EXPECT_EQ(plan.segments[1].first_frame + plan.segments[2].continuity_frame, 20);  // the frame shown at p_1
  EXPECT_EQ(plan.segments[3].continuity, 0.0);
}

TEST(SegmentPlan, InvariantsHoldForManyConfigurations) {
  std::mt19937 rng(7);
  int plans = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    const int F = 2 + static_cast<int>(rng() % 30);
    const int ov = static_cast<int>(rng() % 6), tr = static_cast<int>(rng() % 8);
    if (ov + tr + std::max(ov, tr) > F) continue;
    const int64_t T = 1 + static_cast<int64_t>(rng() % 200);
    std::vector<int64_t> kf = {0};
    const int nk = static_cast<int>(rng() % 4);
    for (int i = 0; i < nk; ++i) {
      int64_t next = kf.back() + 1 + static_cast<int64_t>(rng() % 40);
      if (next >= T) break;
      kf.push_back(next);
    }
    auto plan = plan_segments(opts(T, F, ov, tr, kf));
    check_invariants(plan);
    if (::testing::Test::HasFailure()) return;
    ++plans;
  }
  EXPECT_GT(plans, 1000);
}

TEST(SegmentPlan, InvalidOptionsAreRejectedWithTheSetting) {
  try {
    plan_segments(opts(30, 8, 2, 4));
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("motion.num_frames 8 is too short for overlap 2 and transition_frames 4"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(plan_segments(opts(0, 14, 2, 4)), UsageError);
  EXPECT_THROW(plan_segments(opts(30, 14, 2, 4, {1})), UsageError);
  EXPECT_THROW(plan_segments(opts(30, 14, 2, 4, {0, 10, 10})), UsageError);
  EXPECT_THROW(plan_segments(opts(30, 14, 2, 4, {0, 30})), UsageError);
  EXPECT_THROW(plan_segments(opts(30, 14, -1, 4)), UsageError);
}

TEST(SegmentPlan, DeterministicAndDescribed) {
  auto a = plan_segments(opts(40, 14, 2, 4, {0, 20}));
  auto b = plan_segments(opts(40, 14, 2, 4, {0, 20}));
  EXPECT_EQ(a.describe(), b.describe());
  EXPECT_NE(a.describe().find("segment   2  keyframe  1  frames    20 …    33  from keyframe 1, transition 4 frames"),
            std::string::npos)
      << a.describe();
  EXPECT_EQ(a.segments_for_range(20, 4), (std::vector<int>{1, 2}));
  EXPECT_EQ(a.segments_for_range(0, 40), (std::vector<int>{0, 1, 2, 3}));
}

TEST(SegmentPlan, FromShot) {
  configs::Shot shot;
  shot.fps = {24, 1};
  shot.frames = 72;  // 3 s
  shot.motion.generation_fps = 7;
  shot.motion.num_frames = 14;
  shot.motion.overlap = 2;
  shot.motion.transition_frames = 4;
  shot.keyframes.resize(2);
  shot.keyframes[0].frame = 0;
  shot.keyframes[1].frame = 36;  // 1.5 s → 10.5 generated frames → 11
  auto o = segment_options(shot);
  EXPECT_EQ(o.total_frames, 21);  // 3 s × 7 fps
  EXPECT_EQ(o.keyframe_frames, (std::vector<int64_t>{0, 11}));
  auto plan = plan_segments(o);
  check_invariants(plan);
  // NTSC rates: 100 frames at 30000/1001 → 3.336 s → 24 frames at 7 fps (ceil of 23.36).
  EXPECT_EQ(generation_frames(100, 30000, 1001, 7), 24);
  EXPECT_EQ(generation_frames(72, 24, 1, 7), 21);
  EXPECT_EQ(generation_frame_of(36, 24, 1, 7), 11);
  // Keyframes colliding after conversion name both.
  shot.keyframes[1].frame = 1;  // 1/24 s → generated frame 0
  shot.keyframes[1].line = 9;
  try {
    segment_options(shot);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(
        std::string(e.what()).find("keyframes 0 and 1 (output frames 0 and 1) fall on the same generated frame 0"),
        std::string::npos)
        << e.what();
    EXPECT_EQ(e.line(), 9);
  }
}

TEST(SegmentPlan, SegmentSeedsFollowDocsSeeds) {
  EXPECT_EQ(segment_seed(1234, 0), derive_seed(1234, SeedStream::SegmentLatents, 0));
  EXPECT_EQ(segment_seed(1234, 3), derive_seed(1234, SeedStream::SegmentLatents, 3));
  EXPECT_NE(segment_seed(1234, 0), segment_seed(1234, 1));
  EXPECT_NE(segment_seed(1234, 0), 1234u);  // never the keyframe's own seed
}

// ---- assembling ----

TEST(AssembleFrames, EachShotFrameComesFromTheRightSegmentFrames) {
  // Segment outputs whose frame l holds the shot frame number it stands for (first_frame + l), so any lost,
  // duplicated or shifted frame shows: the blend of two equal values is that value.
  for (auto o : {opts(30, 14, 2, 4), opts(40, 14, 2, 4, {0, 20}), opts(30, 14, 2, 4, {0, 13}), opts(11, 14, 2, 4),
                 opts(20, 8, 0, 0)}) {
    auto plan = plan_segments(o);
    std::vector<at::Tensor> outs;
    for (const auto& s : plan.segments) {
      auto idx = torch::arange(s.first_frame, s.first_frame + s.num_frames, torch::kFloat);  // [F]
      outs.push_back(idx.view({-1, 1, 1, 1}).expand({s.num_frames, 3, 2, 2}).contiguous());  // [F, 3, 2, 2]
    }
    auto shot = assemble_frames(plan, outs);
    ASSERT_EQ(shot.sizes(), (std::vector<int64_t>{o.total_frames, 3, 2, 2}));
    auto want = torch::arange(0, o.total_frames, torch::kFloat).view({-1, 1, 1, 1}).expand_as(shot);
    EXPECT_LT((shot - want).abs().max().item<float>(), 1e-5) << plan.describe();
  }
}

TEST(AssembleFrames, CrossfadeWeights) {
  // Constant segments 0, 1, 2, 3 (value = 10·index): blended frames take the plan's weights.
  auto plan = plan_segments(opts(40, 14, 2, 4, {0, 20}));
  std::vector<at::Tensor> outs;
  for (const auto& s : plan.segments) outs.push_back(torch::full({s.num_frames, 1}, 10.0 * s.index));
  auto shot = assemble_frames(plan, outs).squeeze(1);  // [40]
  for (int64_t g = 0; g < 40; ++g) {
    double want = 0;
    for (const auto& src : plan.sources(g)) want += src.weight * 10.0 * src.segment;
    EXPECT_NEAR(shot[g].item<float>(), want, 1e-5) << "frame " << g;
  }
  EXPECT_FLOAT_EQ(shot[5].item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(shot[12].item<float>(), 10.0f / 3);              // overlap frame 0: weight 1/3 on segment 1
  EXPECT_FLOAT_EQ(shot[13].item<float>(), 20.0f / 3);              // overlap frame 1: 2/3
  EXPECT_FLOAT_EQ(shot[21].item<float>(), 10 * 0.6f + 20 * 0.4f);  // transition frame 1: 2/5 on segment 2
  EXPECT_FLOAT_EQ(shot[39].item<float>(), 30.0f);
}

TEST(AssembleFrames, RangesEqualTheWholeAndFetchOnlyWhatIsNeeded) {
  auto plan = plan_segments(opts(40, 14, 2, 4, {0, 20}));
  std::vector<at::Tensor> outs;
  torch::manual_seed(3);
  for (const auto& s : plan.segments) outs.push_back(torch::rand({s.num_frames, 3, 4, 4}));
  auto whole = assemble_frames(plan, outs);
  for (int64_t first = 0; first < 40; first += 8) {
    const int64_t n = std::min<int64_t>(8, 40 - first);
    std::vector<int> fetched;
    auto part = assemble_range(plan, first, n, [&](int s, int64_t local, int64_t cnt) {
      fetched.push_back(s);
      EXPECT_GE(local, 0);
      EXPECT_LE(local + cnt, plan.segments[static_cast<size_t>(s)].length);
      return outs[static_cast<size_t>(s)].narrow(0, local, cnt);
    });
    EXPECT_TRUE(torch::equal(part, whole.narrow(0, first, n))) << "range " << first;
    EXPECT_EQ(fetched, plan.segments_for_range(first, n));
  }
  // Too few frames in a segment output, wrong count, uint8: clear errors.
  auto short_outs = outs;
  short_outs[1] = short_outs[1].narrow(0, 0, 5);
  EXPECT_THROW(assemble_frames(plan, short_outs), UsageError);
  EXPECT_THROW(assemble_frames(plan, {outs[0]}), UsageError);
  std::vector<at::Tensor> bytes;
  for (const auto& t : outs) bytes.push_back(t.to(torch::kUInt8));
  EXPECT_THROW(assemble_frames(plan, bytes), UsageError);
}
