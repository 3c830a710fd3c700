// The render graph with test stages: order restored by the sequencers, bounded in-flight work,
// device tokens, an exception in a stage, cancellation (caller and SIGINT).
#include <gtest/gtest.h>

#include <csignal>

#include "pipeline/signals.h"
#include "tests/pipeline/test_support.h"
#include "tests/test_util.h"

using namespace clipgen;
using namespace clipgen::test;

namespace {

std::vector<configs::Shot> shot_list(int n, const fs::path& out, int64_t frames = 10) {
  std::vector<configs::Shot> v;
  for (int i = 0; i < n; ++i) v.push_back(make_shot("s" + std::to_string(i), frames + (i % 3), out));
  return v;
}

}  // namespace

TEST(RenderGraph, SequencerRestoresOrderUnderRandomDelays) {
  const auto out = scratch_dir("graph_order");
  auto shots = shot_list(6, out, 11);
  auto r = std::make_shared<TestRenderer>();
  r->max_delay_us = 4000;
  Recorder rec;
  DevicePool pool({"cpu", "cpu", "cpu"});
  RenderGraph g(pool, test_outputs(rec, r.get()), GraphOptions{3, 6});
  auto runs = make_runs(shots, r);
  g.run(runs);

  // Every shot's frames were written in order, shots finished in run order, outputs have final names.
  std::map<int, int64_t> next;
  for (auto [shot, frame] : rec.written) {
    EXPECT_EQ(frame, next[shot]) << "shot " << shot;
    next[shot] = frame + 1;
  }
  for (size_t i = 0; i < shots.size(); ++i) {
    EXPECT_EQ(next[static_cast<int>(i)], shots[i].frames);
    EXPECT_TRUE(fs::exists(shots[i].output));
    EXPECT_EQ(fs::file_size(shots[i].output), static_cast<uintmax_t>(shots[i].frames * 4 * 2 * 3));
    EXPECT_EQ(runs[i]->status(), pipeline::ShotStatus::Done);
  }
  ASSERT_EQ(rec.finished.size(), shots.size());
  for (size_t i = 0; i < shots.size(); ++i) EXPECT_EQ(rec.finished[i], shots[i].id);
  // The batch sequence was global: shot i's frames all precede shot i+1's.
  for (size_t k = 1; k < rec.written.size(); ++k) EXPECT_LE(rec.written[k - 1].first, rec.written[k].first);
  EXPECT_EQ(r->text_calls.load(), 6);
  EXPECT_EQ(r->temporal_calls.load(), 6 * r->segments);
}

TEST(RenderGraph, InFlightWorkStaysBoundedUnderLoad) {
  const auto out = scratch_dir("graph_bounded");
  auto shots = shot_list(24, out, 13);
  auto r = std::make_shared<TestRenderer>();
  r->batch_frames = 2;
  r->max_delay_us = 1500;
  Recorder rec;
  DevicePool pool({"cpu", "cpu", "cpu", "cpu"});
  const GraphOptions opt{2, 3};
  RenderGraph g(pool, test_outputs(rec, r.get()), opt);
  g.run(make_runs(shots, r));

  EXPECT_EQ(rec.finished.size(), shots.size());
  // The graph's own counters …
  EXPECT_LE(g.stats().peak_shots_in_flight.load(), opt.max_shots_in_flight);
  EXPECT_LE(g.stats().peak_batches_in_flight.load(), opt.max_batches_in_flight);
  EXPECT_GE(g.stats().peak_shots_in_flight.load(), 1);
  EXPECT_EQ(g.stats().shots_in_flight.load(), 0);
  EXPECT_EQ(g.stats().batches_in_flight.load(), 0);
  // … and the stages' independent view: shots between text encoding and the writer's end, frames
  // between decode and write.
  EXPECT_LE(r->shots_open.peak.load(), opt.max_shots_in_flight);
  EXPECT_LE(r->frames_open.peak.load(), opt.max_batches_in_flight * r->batch_frames);
  EXPECT_EQ(r->shots_open.now.load(), 0);
  EXPECT_EQ(r->frames_open.now.load(), 0);
}

TEST(RenderGraph, NeverMoreDeviceUsersThanTokens) {
  const auto out = scratch_dir("graph_tokens");
  auto shots = shot_list(10, out, 9);
  auto r = std::make_shared<TestRenderer>();
  Recorder rec;
  DevicePool pool({"cpu", "cuda-fake:1"});  // names only; the test renderer never touches a device
  RenderGraph g(pool, test_outputs(rec, r.get()), GraphOptions{4, 8});
  g.run(make_runs(shots, r));
  EXPECT_EQ(rec.finished.size(), shots.size());
  EXPECT_LE(r->device_users.peak.load(), 2);
  EXPECT_GE(r->device_users.peak.load(), 1);
  EXPECT_FALSE(r->device_shared.load()) << "two stage bodies held the same device";
  EXPECT_LE(pool.peak_active(), 2);
  EXPECT_EQ(pool.active(), 0);
  // text + keyframes + temporal per shot, one use per decode batch
  int64_t expected = 0;
  for (const auto& s : shots) expected += 3 + r->plan(s).batches();
  EXPECT_EQ(pool.uses(), expected);
}

TEST(RenderGraph, OneDeviceSerialisesAllDeviceStages) {
  const auto out = scratch_dir("graph_one_token");
  auto shots = shot_list(5, out, 7);
  auto r = std::make_shared<TestRenderer>();
  Recorder rec;
  DevicePool pool({"cpu"});
  RenderGraph g(pool, test_outputs(rec, r.get()), GraphOptions{3, 4});
  g.run(make_runs(shots, r));
  EXPECT_EQ(rec.finished.size(), shots.size());
  EXPECT_EQ(r->device_users.peak.load(), 1);
}

TEST(RenderGraph, StageExceptionSurfacesOnceWithShotAndStage) {
  for (const char* stage : {"text", "keyframes", "temporal", "decode"}) {
    for (bool std_error : {false, true}) {
      SCOPED_TRACE(std::string(stage) + (std_error ? " std" : " clipgen"));
      const auto out = scratch_dir("graph_exception");
      auto shots = shot_list(4, out, 10);
      auto r = std::make_shared<TestRenderer>();
      r->fail_shot = "s2";
      r->fail_stage = stage;
      r->fail_with_std = std_error;
      Recorder rec;
      DevicePool pool({"cpu", "cpu"});
      RenderGraph g(pool, test_outputs(rec, r.get()), GraphOptions{2, 4});
      auto runs = make_runs(shots, r);
      int caught = 0;
      try {
        g.run(runs);
      } catch (const CancelledError&) {
        ADD_FAILURE() << "a failure must surface as itself, not as a cancellation";
      } catch (const Error& e) {
        ++caught;
        const std::string expect = std::string("shot 's2', stage ") + stage + ": " +
                                   (std_error ? "injected std failure" : "injected failure");
        EXPECT_EQ(std::string(e.what()), expect);
        EXPECT_EQ(e.contexts().size(), std_error ? 0u : 1u);
        EXPECT_EQ(e.exit_code(), 1);
      }
      EXPECT_EQ(caught, 1);
      EXPECT_EQ(runs[2]->status(), pipeline::ShotStatus::Failed);
      EXPECT_NE(runs[2]->report().error.find("stage " + std::string(stage)), std::string::npos);
      for (const auto& run : runs) EXPECT_NE(run->status(), pipeline::ShotStatus::Rendering);
      EXPECT_FALSE(fs::exists(shots[2].output));
      EXPECT_EQ(rec.writers_alive.load(), 0);
      for (const auto& name : files_in(out)) EXPECT_EQ(name.find(".partial"), std::string::npos) << name;
    }
  }
}

TEST(RenderGraph, EncoderExceptionCarriesContext) {
  const auto out = scratch_dir("graph_encode_exception");
  auto shots = shot_list(2, out, 6);
  auto r = std::make_shared<TestRenderer>();
  Recorder rec;
  auto outputs = test_outputs(rec, r.get());
  outputs.encoder = [](const ShotRun& run) -> std::unique_ptr<ClipWriter> {
    if (run.id() == "s1") throw EncodeError("libx264: cannot open codec");
    return nullptr;
  };
  DevicePool pool({"cpu"});
  RenderGraph g(pool, outputs, GraphOptions{2, 2});
  shots[0].frames = 0;  // a plan with no frames is refused before anything runs
  EXPECT_THROW(g.run(make_runs(shots, r)), Error);
  shots[0].frames = 6;
  outputs.encoder = [&rec](const ShotRun& run) -> std::unique_ptr<ClipWriter> {
    if (run.id() == "s1") throw EncodeError("libx264: cannot open codec");
    return std::make_unique<FileWriter>(run, rec, nullptr);
  };
  RenderGraph g2(pool, outputs, GraphOptions{2, 2});
  try {
    g2.run(make_runs(shots, r));
    FAIL() << "expected EncodeError";
  } catch (const EncodeError& e) {
    EXPECT_EQ(std::string(e.what()), "shot 's1', stage encode: libx264: cannot open codec");
  }
  EXPECT_TRUE(fs::exists(shots[0].output));  // the earlier shot completed
  EXPECT_FALSE(fs::exists(shots[1].output));
}

TEST(RenderGraph, CancelMidRunStopsAndLeavesNoPartialFiles) {
  const auto out = scratch_dir("graph_cancel");
  auto shots = shot_list(8, out, 30);
  auto r = std::make_shared<TestRenderer>();
  r->max_delay_us = 5000;
  Recorder rec;
  pipeline::CancelToken cancel;
  rec.on_write = [&](int64_t n) {
    if (n == 40) cancel.cancel();  // mid-way through the second shot
  };
  DevicePool pool({"cpu", "cpu"});
  RenderGraph g(pool, test_outputs(rec, r.get()), GraphOptions{2, 3});
  auto runs = make_runs(shots, r);
  EXPECT_THROW(g.run(runs, &cancel), CancelledError);
  // The graph stopped: not every batch was decoded, no writer is left, the first shot is complete
  // and nothing else is under a final name or a temporary one.
  int64_t all_batches = 0;
  for (const auto& s : shots) all_batches += r->plan(s).batches();
  EXPECT_LT(r->decode_calls.load(), all_batches);
  EXPECT_EQ(rec.writers_alive.load(), 0);
  EXPECT_EQ(runs[0]->status(), pipeline::ShotStatus::Done);
  const auto names = files_in(out);
  EXPECT_EQ(names, std::set<std::string>{"s0.raw"});
  for (size_t i = 1; i < runs.size(); ++i) {
    const auto st = runs[i]->status();
    EXPECT_TRUE(st == pipeline::ShotStatus::Cancelled || st == pipeline::ShotStatus::Pending) << to_string(st);
  }
}

TEST(RenderGraph, SigintCancelsCleanly) {
  pipeline::install_signal_handlers();
  pipeline::reset_signal_state();
  const auto out = scratch_dir("graph_sigint");
  auto shots = shot_list(6, out, 30);
  auto r = std::make_shared<TestRenderer>();
  Recorder rec;
  rec.on_write = [&](int64_t n) {
    if (n == 5) std::raise(SIGINT);
  };
  DevicePool pool({"cpu"});
  RenderGraph g(pool, test_outputs(rec, r.get()), GraphOptions{2, 2});
  EXPECT_THROW(g.run(make_runs(shots, r)), CancelledError);
  EXPECT_EQ(pipeline::received_signal(), SIGINT);
  pipeline::reset_signal_state();
  EXPECT_TRUE(files_in(out).empty());
  EXPECT_EQ(rec.writers_alive.load(), 0);
}
