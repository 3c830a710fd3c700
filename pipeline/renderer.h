// The stage interfaces the render graph drives. This is where generation back-ends plug in.
//
// A ShotRenderer generates one model family's frames for a shot, in four device stages:
//
//   encode_text(job)               → Conditioning      text / image embeddings for every keyframe
//   keyframes(cond)                → KeyframeLatents   one latent per keyframe (txt2img / img2img)
//   temporal(kf, s, prev)          → SegmentLatents    temporal run s (0 … plan.segments-1); `prev` is
//                                                      segment s-1 (nullptr for s == 0) for chaining
//   decode(latents, b)             → FrameBatch        frames [b*batch_frames, …) at the generation
//                                                      raster; the renderer blends segment overlaps
//
// plus plan(shot), which fixes raster, fps, frame count, segments and decode chunk before anything
// runs. The graph calls each stage with a StageContext: the device the stage holds (its token), the
// shot, its plan, progress reporting and cancellation. Rules for implementations:
//  - every method may be called concurrently for different shots (and decode for different batches
//    of one shot): keep per-call state local; guard shared caches (e.g. models resident per device);
//  - put tensors on ctx.device().torch_device(); draw every random number from a generator seeded by
//    derive_seed(shot.seed, …) (models/rng.h), never from the global generator;
//  - call ctx.throw_if_cancelled() between steps (each denoising step) and ctx.progress() after;
//  - throw clipgen errors with the facts; the graph adds "shot 'x', stage y" to the message;
//  - c10::InferenceMode is already set by the graph on the calling thread.
// Keyframe and segment outputs are checkpointed by the graph (pipeline/checkpoint.h): on resume,
// keyframes()/temporal() are not called for stages already saved, and encode_text() is skipped when
// the keyframes are restored — so temporal() must not need the Conditioning (put what it needs into
// KeyframeLatents::extra).
//
// After decode, frames go through the output stages (FrameProcessor = post, ClipWriter = encode),
// which run serially in shot order. The defaults wrap stages::PostProcessor and stages::Encoder;
// tests substitute their own.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "configs/shot.h"
#include "pipeline/device_pool.h"
#include "pipeline/messages.h"

namespace clipgen::pipeline {

class StageContext {
public:
  struct Hooks {
    std::function<void(std::string_view stage, int64_t done, int64_t total)> progress;
    std::function<bool()> cancelled;
    std::function<void(const std::string&)> warn;
  };
  StageContext(const Device& device, ShotRun& run, std::string stage, const Hooks& hooks)
      : device_(device), run_(run), stage_(std::move(stage)), hooks_(hooks) {}

  const Device& device() const { return device_; }
  ShotRun& run() const { return run_; }
  const configs::Shot& shot() const;
  const GenerationPlan& plan() const;
  const std::string& stage() const { return stage_; }

  // Reports progress of this stage (e.g. denoising steps); shown on the progress line.
  void progress(int64_t done, int64_t total) const {
    if (hooks_.progress) hooks_.progress(stage_, done, total);
  }
  // True once the run is cancelled (signal, caller, or a failure elsewhere in the graph).
  bool cancelled() const { return hooks_.cancelled && hooks_.cancelled(); }
  // Throws CancelledError when cancelled().
  void throw_if_cancelled() const;
  // A warning for the run report and the log.
  void warn(const std::string& message) const {
    if (hooks_.warn) hooks_.warn(message);
  }

private:
  const Device& device_;
  ShotRun& run_;
  std::string stage_;
  const Hooks& hooks_;
};

class ShotRenderer {
public:
  virtual ~ShotRenderer() = default;
  // A stable name ("procedural-v1", "sd+svd", …): part of the checkpoint hash, so changing what a
  // renderer produces means changing its name.
  virtual std::string name() const = 0;
  // The precision this renderer's models run in for `shot` on `device` ("fp32", "bf16", "fp16"), for the
  // plan and the run report; "" when it runs no model weights. Throws UnsupportedError when the shot's
  // precision cannot run there (fp16 on the CPU).
  virtual std::string precision_on(const configs::Shot& /*shot*/, const Device& /*device*/) const { return {}; }
  virtual GenerationPlan plan(const configs::Shot& shot) const = 0;
  virtual Conditioning encode_text(ShotJob job, StageContext& ctx) = 0;
  virtual KeyframeLatents keyframes(Conditioning cond, StageContext& ctx) = 0;
  virtual SegmentLatents temporal(const KeyframeLatents& kf, int segment, const SegmentLatents* previous,
                                  StageContext& ctx) = 0;
  virtual FrameBatch decode(const ShotLatents& latents, int batch, StageContext& ctx) = 0;
};

// Picks the renderer for a shot (by its model references). Throws UnsupportedError for shots no
// renderer can handle; called for every shot before the graph starts.
using RendererFactory = std::function<std::shared_ptr<ShotRenderer>(const configs::Shot&)>;

// Post stage of one shot: generation raster/fps → preset raster/fps. Frames arrive in order.
class FrameProcessor {
public:
  virtual ~FrameProcessor() = default;
  virtual std::vector<stages::Frame> push(std::vector<stages::Frame>&& frames) = 0;
  virtual std::vector<stages::Frame> flush() = 0;
};

// Encode stage of one shot. Writes under a temporary name; finish() renames it to the shot's output.
// Destroying a writer without finish() must remove the temporary file (cancellation, failures).
class ClipWriter {
public:
  virtual ~ClipWriter() = default;
  virtual void write(stages::Frame&& frame) = 0;  // frames in order; the writer may keep it
  virtual void finish() = 0;
  virtual int64_t frames_written() const = 0;
};

struct OutputStages {
  std::function<std::unique_ptr<FrameProcessor>(const ShotRun&)> post;
  std::function<std::unique_ptr<ClipWriter>(const ShotRun&)> encoder;
};

}  // namespace clipgen::pipeline
