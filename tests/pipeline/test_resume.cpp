// Checkpoints and resume through render_shots(): finished shots are skipped, finished stages are
// restored after a failure, a changed shot or --force re-renders, the report says what happened.
#include <gtest/gtest.h>

#include "pipeline/checkpoint.h"
#include "pipeline/render.h"
#include "tests/pipeline/test_support.h"
#include "tests/test_util.h"

using namespace clipgen;
using namespace clipgen::test;

namespace {

struct Fixture {
  fs::path out;
  configs::ShotList list;
  std::shared_ptr<TestRenderer> renderer = std::make_shared<TestRenderer>();
  Recorder rec;

  explicit Fixture(const std::string& name) : out(scratch_dir(name)) {
    for (int i = 0; i < 3; ++i) list.shots.push_back(make_shot("r" + std::to_string(i), 9, out, 100 + i));
    renderer->max_delay_us = 200;
  }
  pipeline::RenderOptions options() {
    pipeline::RenderOptions o;
    o.out_root = out;
    o.devices = {"cpu", "cpu"};
    auto r = renderer;
    o.renderer_for = [r](const configs::Shot&) { return r; };
    o.outputs = test_outputs(rec, renderer.get());
    return o;
  }
  pipeline::RunReport run(const pipeline::RenderOptions& o) {
    pipeline::RunReport rep;
    pipeline::render_shots(list, o, rep);
    return rep;
  }
  void reset_counts() {
    renderer->text_calls = renderer->keyframe_calls = renderer->temporal_calls = renderer->decode_calls = 0;
  }
};

}  // namespace

TEST(Resume, FinishedShotsAreSkipped) {
  Fixture f("resume_skip");
  auto rep = f.run(f.options());
  ASSERT_EQ(rep.shots.size(), 3u);
  for (const auto& s : rep.shots) {
    EXPECT_EQ(s.status, pipeline::ShotStatus::Done) << s.id;
    EXPECT_TRUE(fs::exists(s.output));
    EXPECT_TRUE(s.partial.empty());
    EXPECT_GT(s.stage_seconds.count("decode"), 0u);
  }
  // After a complete render only the manifest is kept.
  for (const auto& s : f.list.shots) {
    const auto dir = pipeline::CheckpointStore::dir_for(f.out, s.id);
    EXPECT_EQ(files_in(dir), std::set<std::string>{"manifest.json"});
  }
  f.reset_counts();
  rep = f.run(f.options());
  for (const auto& s : rep.shots) EXPECT_EQ(s.status, pipeline::ShotStatus::Skipped) << s.id;
  EXPECT_EQ(f.renderer->text_calls.load() + f.renderer->decode_calls.load(), 0);

  // A changed shot (new prompt → new hash) renders again; the others stay skipped.
  f.list.shots[1].prompt = "something else";
  rep = f.run(f.options());
  EXPECT_EQ(rep.shots[0].status, pipeline::ShotStatus::Skipped);
  EXPECT_EQ(rep.shots[1].status, pipeline::ShotStatus::Done);
  EXPECT_EQ(rep.shots[2].status, pipeline::ShotStatus::Skipped);

  // An output that was changed on disk (size differs from the manifest) is not trusted.
  { std::ofstream(f.list.shots[2].output, std::ios::app) << "x"; }
  rep = f.run(f.options());
  EXPECT_EQ(rep.shots[2].status, pipeline::ShotStatus::Done);

  // --force re-renders everything.
  f.reset_counts();
  auto o = f.options();
  o.force = true;
  rep = f.run(o);
  for (const auto& s : rep.shots) EXPECT_EQ(s.status, pipeline::ShotStatus::Done);
  EXPECT_EQ(f.renderer->text_calls.load(), 3);
}

TEST(Resume, FinishedStagesAreRestoredAfterAFailure) {
  Fixture f("resume_stages");
  f.renderer->fail_shot = "r1";
  f.renderer->fail_stage = "decode";
  auto opt = f.options();
  opt.graph.max_shots_in_flight = 1;  // r2 is not started before r1 fails
  pipeline::RunReport rep;
  EXPECT_THROW(pipeline::render_shots(f.list, opt, rep), Error);
  EXPECT_EQ(rep.shots[0].status, pipeline::ShotStatus::Done);
  EXPECT_EQ(rep.shots[1].status, pipeline::ShotStatus::Failed);
  EXPECT_EQ(rep.exit_code, 1);
  EXPECT_NE(rep.error.find("shot 'r1', stage decode"), std::string::npos) << rep.error;
  // What remains of r1: its keyframe and segment checkpoints, listed in the report.
  std::set<std::string> partial;
  for (const auto& p : rep.shots[1].partial) partial.insert(p.filename().string());
  EXPECT_EQ(partial, (std::set<std::string>{"keyframes.safetensors", "segment-0000.safetensors",
                                             "segment-0001.safetensors"}));
  EXPECT_FALSE(fs::exists(f.list.shots[1].output));
  const auto json = rep.to_json();
  EXPECT_NE(json.find("\"status\": \"failed\""), std::string::npos);
  EXPECT_NE(json.find("segment-0001.safetensors"), std::string::npos);

  // Rerun without the failure: r0 is skipped, r1 resumes at decode, r2 renders from scratch.
  f.renderer->fail_shot.clear();
  f.reset_counts();
  f.rec.written.clear();
  rep = f.run(f.options());
  EXPECT_EQ(rep.shots[0].status, pipeline::ShotStatus::Skipped);
  EXPECT_EQ(rep.shots[1].status, pipeline::ShotStatus::Done);
  EXPECT_EQ(rep.shots[2].status, pipeline::ShotStatus::Done);
  EXPECT_EQ(rep.shots[1].resumed_stages,
            (std::vector<std::string>{"keyframes", "segment-0000", "segment-0001"}));
  EXPECT_TRUE(rep.shots[2].resumed_stages.empty());
  EXPECT_EQ(f.renderer->text_calls.load(), 1);       // r2 only
  EXPECT_EQ(f.renderer->keyframe_calls.load(), 1);   // r2 only
  EXPECT_EQ(f.renderer->temporal_calls.load(), 2);   // r2's two segments
  // The restored latents are the ones r1 computed: its frames carry the right indices in order.
  std::vector<int64_t> r1;
  for (auto [shot, frame] : f.rec.written)
    if (shot == 1) r1.push_back(frame);
  ASSERT_EQ(static_cast<int64_t>(r1.size()), f.list.shots[1].frames);
  for (size_t i = 0; i < r1.size(); ++i) EXPECT_EQ(r1[i], static_cast<int64_t>(i));
}

TEST(Resume, ManifestOfAnotherShotIsIgnored) {
  Fixture f("resume_hash");
  pipeline::CheckpointStore a(f.out, f.list.shots[0], "test-renderer");
  a.save_stage("keyframes", {{"latents", torch::ones({2, 2})}});
  EXPECT_TRUE(pipeline::CheckpointStore(f.out, f.list.shots[0], "test-renderer").has_stage("keyframes"));
  EXPECT_FALSE(pipeline::CheckpointStore(f.out, f.list.shots[0], "other-renderer").has_stage("keyframes"));
  EXPECT_FALSE(pipeline::CheckpointStore(f.out, f.list.shots[0], "test-renderer", /*force=*/true).has_stage("keyframes"));
  auto changed = f.list.shots[0];
  changed.seed += 1;
  EXPECT_FALSE(pipeline::CheckpointStore(f.out, changed, "test-renderer").has_stage("keyframes"));
  auto loaded = pipeline::CheckpointStore(f.out, f.list.shots[0], "test-renderer").load_stage("keyframes");
  ASSERT_TRUE(loaded.has_value());
  EXPECT_TRUE(torch::equal(loaded->at("latents"), torch::ones({2, 2})));
}

TEST(Resume, DryRunPlansWithoutRendering) {
  Fixture f("resume_dry");
  auto o = f.options();
  o.dry_run = true;
  auto rep = f.run(o);
  for (const auto& s : rep.shots) EXPECT_EQ(s.status, pipeline::ShotStatus::Planned);
  EXPECT_EQ(f.renderer->text_calls.load(), 0);
  auto plans = pipeline::plan_shots(f.list, o);
  ASSERT_EQ(plans.size(), 3u);
  EXPECT_EQ(plans[0].plan.batches(), 3);  // 9 frames in batches of 3
  EXPECT_NE(pipeline::format_plan(plans).find("r2: 9 frames"), std::string::npos);
  EXPECT_FALSE(fs::exists(f.list.shots[0].output));
}
