// Test stages for the render graph: a renderer whose stages sleep for seeded random times, count their
// concurrent users and can be told to fail; an in-memory post stage; a writer that writes a real file
// under a temporary name and renames it on finish (like stages::Encoder), recording frame order.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "pipeline/graph.h"
#include "pipeline/renderer.h"

namespace clipgen::test {
namespace fs = std::filesystem;
using namespace clipgen::pipeline;

// Peak tracking for a concurrently changing count.
struct Gauge {
  std::atomic<int> now{0}, peak{0};
  void up(int n = 1) {
    const int v = now.fetch_add(n) + n;
    int p = peak.load();
    while (v > p && !peak.compare_exchange_weak(p, v)) {
    }
  }
  void down(int n = 1) { now.fetch_sub(n); }
};

inline configs::Shot make_shot(const std::string& id, int64_t frames, const fs::path& out_dir, uint64_t seed = 7) {
  configs::Shot s;
  s.id = id;
  s.frames = frames;
  s.fps = {8, 1};
  s.duration = static_cast<double>(frames) / 8.0;
  s.seed = seed;
  s.prompt = "a quiet valley, " + id;
  s.keyframes.push_back(configs::Keyframe{});
  s.keyframes.back().prompt = s.prompt;
  s.output = out_dir / (id + ".raw");
  s.preset.name = "test";
  s.preset.width = 4;
  s.preset.height = 2;
  s.preset.fps = {8, 1};
  return s;
}

// Frames are 4x2; pixel 0 holds (shot index, frame index low byte, frame index high byte).
struct TestRenderer : ShotRenderer {
  int segments = 2;
  int batch_frames = 3;
  int max_delay_us = 3000;
  std::string fail_shot, fail_stage;  // throw in this stage of this shot
  bool fail_with_std = false;
  std::atomic<int> text_calls{0}, keyframe_calls{0}, temporal_calls{0}, decode_calls{0};
  Gauge device_users;                 // concurrent device-stage bodies
  Gauge shots_open;                   // shots between encode_text and their writer's finish/destruction
  Gauge frames_open;                  // frames decoded but not yet written
  std::mutex mutex;
  std::multiset<std::string> devices_busy;
  std::atomic<bool> device_shared{false};

  std::string name() const override { return "test-renderer"; }
  GenerationPlan plan(const configs::Shot& shot) const override {
    GenerationPlan p;
    p.width = 4;
    p.height = 2;
    p.fps = {8, 1};
    p.frames = shot.frames;
    p.keyframes = 1;
    p.segments = segments;
    p.batch_frames = batch_frames;
    return p;
  }
  void enter(StageContext& ctx, const char* stage) {
    device_users.up();
    {
      std::lock_guard lock(mutex);
      if (devices_busy.count(ctx.device().name)) device_shared = true;
      devices_busy.insert(ctx.device().name);
    }
    if (ctx.shot().id == fail_shot && fail_stage == stage) {
      leave(ctx);
      if (fail_with_std) throw std::runtime_error("injected std failure");
      throw Error("injected failure");
    }
    thread_local std::mt19937 rng(std::hash<std::thread::id>{}(std::this_thread::get_id()));
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % static_cast<unsigned>(max_delay_us + 1)));
    EXPECT_TRUE(c10::InferenceMode::is_enabled()) << "InferenceMode must be set inside the node body";
  }
  void leave(StageContext& ctx) {
    {
      std::lock_guard lock(mutex);
      devices_busy.erase(devices_busy.find(ctx.device().name));
    }
    device_users.down();
  }
  Conditioning encode_text(ShotJob job, StageContext& ctx) override {
    shots_open.up();
    ++text_calls;
    enter(ctx, "text");
    Conditioning c;
    c.job = std::move(job);
    c.tensors["emb"] = torch::full({2, 3}, static_cast<float>(ctx.run().index()));
    leave(ctx);
    return c;
  }
  KeyframeLatents keyframes(Conditioning cond, StageContext& ctx) override {
    ++keyframe_calls;
    enter(ctx, "keyframes");
    KeyframeLatents k;
    k.job = std::move(cond.job);
    k.latents = cond.tensors.at("emb") * 2;
    k.extra["note"] = torch::arange(3);
    leave(ctx);
    return k;
  }
  SegmentLatents temporal(const KeyframeLatents& kf, int segment, const SegmentLatents* prev, StageContext& ctx) override {
    ++temporal_calls;
    enter(ctx, "temporal");
    EXPECT_EQ(prev == nullptr, segment == 0);
    SegmentLatents s;
    const int64_t per = (ctx.plan().frames + segments - 1) / segments;
    s.first_frame = segment * per;
    s.frames = std::min<int64_t>(per, ctx.plan().frames - s.first_frame);
    s.latents = torch::arange(s.first_frame, s.first_frame + s.frames, torch::kInt64);  // [F]
    EXPECT_TRUE(kf.latents.defined());
    leave(ctx);
    return s;
  }
  FrameBatch decode(const ShotLatents& lat, int batch, StageContext& ctx) override {
    ++decode_calls;
    enter(ctx, "decode");
    EXPECT_EQ(static_cast<int>(lat.segments.size()), segments);
    FrameBatch b;
    b.first_frame = static_cast<int64_t>(batch) * ctx.plan().batch_frames;
    const int64_t end = std::min<int64_t>(ctx.plan().frames, b.first_frame + ctx.plan().batch_frames);
    for (int64_t f = b.first_frame; f < end; ++f) {
      int64_t v = -1;
      for (const auto& s : lat.segments)
        if (f >= s.first_frame && f < s.first_frame + s.frames) v = s.latents[f - s.first_frame].item<int64_t>();
      stages::Frame fr(4, 2);
      fr.rgb[0] = static_cast<uint8_t>(ctx.run().index());
      fr.rgb[1] = static_cast<uint8_t>(v & 0xff);
      fr.rgb[2] = static_cast<uint8_t>(v >> 8);
      b.frames.push_back(std::move(fr));
    }
    frames_open.up(static_cast<int>(b.frames.size()));
    leave(ctx);
    return b;
  }
};

struct PassPost : FrameProcessor {
  std::vector<stages::Frame> push(std::vector<stages::Frame>&& f) override { return std::move(f); }
  std::vector<stages::Frame> flush() override { return {}; }
};

// Records what it writes; writes the frames to a temporary file renamed on finish().
struct Recorder {
  std::mutex mutex;
  std::vector<std::pair<int, int64_t>> written;  // (shot index, frame index) in write order
  std::vector<std::string> finished;             // shot ids in finish order
  std::atomic<int> writers_alive{0};
  std::function<void(int64_t total_written)> on_write;  // e.g. cancel after n frames
  std::atomic<int64_t> total{0};
};

struct FileWriter : ClipWriter {
  FileWriter(const ShotRun& run, Recorder& rec, TestRenderer* renderer)
      : rec_(rec), renderer_(renderer), final_(run.shot().output), temp_(temp_path_for(final_)), id_(run.id()),
        file_(temp_, std::ios::binary) {
    ++rec_.writers_alive;
  }
  ~FileWriter() override {
    if (!done_) {
      file_.close();
      std::error_code ec;
      fs::remove(temp_, ec);
    }
    --rec_.writers_alive;
    if (renderer_ && !closed_) renderer_->shots_open.down();
  }
  void write(stages::Frame&& f) override {
    file_.write(reinterpret_cast<const char*>(f.rgb.data()), static_cast<std::streamsize>(f.rgb.size()));
    {
      std::lock_guard lock(rec_.mutex);
      rec_.written.emplace_back(f.rgb[0], f.rgb[1] | (f.rgb[2] << 8));
    }
    ++n_;
    if (renderer_) renderer_->frames_open.down();
    const auto t = ++rec_.total;
    if (rec_.on_write) rec_.on_write(t);
  }
  void finish() override {
    file_.close();
    commit_temp(temp_, final_);
    done_ = true;
    std::lock_guard lock(rec_.mutex);
    rec_.finished.push_back(id_);
    if (renderer_) {
      renderer_->shots_open.down();
      closed_ = true;
    }
  }
  int64_t frames_written() const override { return n_; }

  Recorder& rec_;
  TestRenderer* renderer_;
  fs::path final_, temp_;
  std::string id_;
  std::ofstream file_;
  int64_t n_ = 0;
  bool done_ = false, closed_ = false;
};

inline OutputStages test_outputs(Recorder& rec, TestRenderer* renderer) {
  OutputStages o;
  o.post = [](const ShotRun&) { return std::make_unique<PassPost>(); };
  o.encoder = [&rec, renderer](const ShotRun& run) { return std::make_unique<FileWriter>(run, rec, renderer); };
  return o;
}

inline std::vector<std::shared_ptr<ShotRun>> make_runs(const std::vector<configs::Shot>& shots,
                                                       std::shared_ptr<ShotRenderer> r) {
  std::vector<std::shared_ptr<ShotRun>> runs;
  for (size_t i = 0; i < shots.size(); ++i)
    runs.push_back(std::make_shared<ShotRun>(shots[i], static_cast<int>(i), r, r->plan(shots[i])));
  return runs;
}

// Files in `dir` (non-recursive), names only.
inline std::set<std::string> files_in(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) out.insert(e.path().filename().string());
  return out;
}

}  // namespace clipgen::test
