// The render graph: a oneTBB flow graph whose nodes are the stages of pipeline/renderer.h.
//
//  source ─▶ limiter(shots) ─▶ admit ─▶ [join text  ◀─ tokens] ─▶ text ─▶ queue
//         ─▶ [join keyframes ◀─ tokens] ─▶ keyframes ─▶ queue ─▶ [join temporal ◀─ tokens] ─▶ temporal
//         ─▶ sequencer(batch) ─▶ limiter(batches) ─▶ admit ─▶ [join decode ◀─ tokens] ─▶ decode
//         ─▶ sequencer(batch) ─▶ post (serial) ─▶ sequencer(batch) ─▶ encode (serial) ─▶ done (serial)
//
// - Devices are tokens (DeviceToken) in one queue_node; each device stage reserves a token with a
//   reserving join_node and puts it back when its body ends. No stage holds a token while it waits.
// - In-flight work is bounded twice: at most `max_shots_in_flight` shots between admission and
//   `done` (the shot limiter is decremented by `done`), and at most `max_batches_in_flight` decode
//   chunks between the batch limiter and the encoder (decremented per encoded batch). Batches enter
//   the batch limiter in run order (sequencer first), so a later shot's chunks can never take the
//   slots an earlier shot's chunks need (no deadlock), and frames in memory stay bounded.
// - Edges carry std::shared_ptr to the large messages (oneTBB copies messages into its buffers: the
//   handle is copied, the payload is moved out by the consuming stage, never copied).
// - A stage exception cancels the graph (oneTBB cancels the graph's task_group_context) and is
//   rethrown from run() once, with "shot 'x', stage y" prepended. A cancel request (CancelToken,
//   SIGINT/SIGTERM via pipeline/signals.h) cancels the graph; running stage bodies see it through
//   StageContext::cancelled(); run() then throws CancelledError. Unfinished ClipWriters are destroyed
//   without finish(), which removes their temporary files: nothing is left under a final name.
// - c10::InferenceMode is set inside every device-stage body (it is thread-local).
#pragma once
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "configs/shot.h"
#include "pipeline/checkpoint.h"
#include "pipeline/device_pool.h"
#include "pipeline/messages.h"
#include "pipeline/renderer.h"
#include "pipeline/report.h"
#include "pipeline/signals.h"

namespace clipgen::pipeline {

class Progress;

// Per-shot state shared by all messages of one shot.
class ShotRun {
public:
  ShotRun(const configs::Shot& shot, int index, std::shared_ptr<ShotRenderer> renderer, GenerationPlan plan,
          std::unique_ptr<CheckpointStore> checkpoints = nullptr);

  const configs::Shot& shot() const { return shot_; }
  const std::string& id() const { return shot_.id; }
  int index() const { return index_; }
  const GenerationPlan& plan() const { return plan_; }
  ShotRenderer& renderer() const { return *renderer_; }
  CheckpointStore* checkpoints() const { return checkpoints_.get(); }
  uint64_t first_batch_seq() const { return first_batch_seq_; }
  void set_first_batch_seq(uint64_t s) { first_batch_seq_ = s; }

  // Report bookkeeping (thread-safe).
  void add_seconds(const std::string& stage, double seconds);
  void add_warning(const std::string& message);
  void add_resumed(const std::string& stage);
  // A stage runs on `device` with the models in `precision` ("" for renderers without model weights).
  void add_device(const std::string& device, const std::string& precision);
  void set_status(ShotStatus s, const std::string& error = {});
  ShotStatus status() const;
  ShotReport report() const;  // a snapshot

  // Output stages: touched only by the serial post and encode nodes.
  std::unique_ptr<FrameProcessor> post;
  std::unique_ptr<ClipWriter> writer;

private:
  const configs::Shot& shot_;
  int index_;
  std::shared_ptr<ShotRenderer> renderer_;
  GenerationPlan plan_;
  std::unique_ptr<CheckpointStore> checkpoints_;
  uint64_t first_batch_seq_ = 0;
  mutable std::mutex mutex_;
  ShotReport report_;
};

struct GraphOptions {
  int max_shots_in_flight = 2;
  int max_batches_in_flight = 4;
};

// Counters kept while the graph runs (tests assert the bounds; the CLI logs them at -v).
struct GraphStats {
  std::atomic<int> shots_in_flight{0}, peak_shots_in_flight{0};
  std::atomic<int> batches_in_flight{0}, peak_batches_in_flight{0};
  std::atomic<int64_t> batches_encoded{0};
};

class RenderGraph {
public:
  RenderGraph(DevicePool& devices, OutputStages outputs, GraphOptions options = {}, Progress* progress = nullptr);

  // Renders `shots` (in this order; each must have a plan with at least one batch). Returns when every
  // shot is encoded. Throws the first stage failure (clipgen::Error with shot/stage context) or
  // CancelledError; the ShotRuns' reports say what happened to each shot either way.
  void run(const std::vector<std::shared_ptr<ShotRun>>& shots, const CancelToken* cancel = nullptr);

  const GraphStats& stats() const { return stats_; }
  DevicePool& devices() { return devices_; }

private:
  DevicePool& devices_;
  OutputStages outputs_;
  GraphOptions options_;
  Progress* progress_;
  GraphStats stats_;
};

}  // namespace clipgen::pipeline
