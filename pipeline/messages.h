// The typed messages that travel on the edges of the render graph (pipeline/graph.h).
//
// Every message carries a header (shot id, shot index, sequence number) and owns its payload.
// Tensors are moved from stage to stage, never copied; the one message that several nodes read at
// once (ShotLatents, read by every decode chunk of a shot) is shared read-only through a
// shared_ptr<const ...>.
//
// Flow of one shot (names are the node names used in error contexts and progress lines):
//
//   ShotJob ─text─▶ Conditioning ─keyframes─▶ KeyframeLatents ─temporal─▶ ShotLatents
//     ─split─▶ DecodeWork × batches ─decode─▶ FrameBatch ─post─▶ FrameBatch ─encode─▶ EncodedClip
//
// Sequence numbers: ShotJob::header.seq is the shot's position in the run (0, 1, 2 …).
// DecodeWork and FrameBatch use a run-global, contiguous batch number (shot 0's batches first, then
// shot 1's, …) so that the graph's sequencer_nodes can restore output order.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "configs/shot.h"
#include "models/io/safetensors.h"
#include "stages/frame.h"

namespace clipgen::pipeline {

class ShotRun;  // per-shot run state (pipeline/graph.h): plan, checkpoints, timings, output stages

// How a renderer will generate a shot: decided before the graph runs (cheap, no model loading), so
// that batch sequence numbers are known up front and limits can be checked.
struct GenerationPlan {
  int width = 0, height = 0;         // generation raster (what decode produces)
  configs::Rational fps{7, 1};       // generation frame rate (post retimes to the preset's)
  int64_t frames = 0;                // frames generated (at `fps`)
  int keyframes = 1;                 // keyframe stage outputs
  int segments = 1;                  // temporal stage runs (model calls) for the shot
  int batch_frames = 8;              // frames per decode chunk
  int batches() const { return frames <= 0 ? 0 : static_cast<int>((frames + batch_frames - 1) / batch_frames); }
};

struct MessageHeader {
  std::string shot_id;
  int shot_index = 0;  // position of the shot in the run
  uint64_t seq = 0;    // see the file comment
};

// A shot admitted into the graph.
struct ShotJob {
  MessageHeader header;
  std::shared_ptr<ShotRun> run;  // shared by every message of the shot
};

// Text (or image) conditioning for the keyframe stage: e.g. "prompt_embeds" [K, 77, 768],
// "negative_prompt_embeds", "pooled_prompt_embeds" — names are the renderer's business.
// `resumed` is set when the keyframes were restored from a checkpoint and no encoding was done.
struct Conditioning {
  ShotJob job;
  io::TensorMap tensors;
  bool resumed = false;
};

// Keyframe stage output. `latents` is [K, C, h, w] for diffusion renderers (K = keyframes);
// `extra` holds anything the temporal stage needs besides (image embeddings, ...). Both are saved in
// the shot's checkpoint. `images` are decoded keyframe previews (contact sheet); not checkpointed.
struct KeyframeLatents {
  ShotJob job;
  at::Tensor latents;
  io::TensorMap extra;
  std::vector<stages::Frame> images;
};

// One temporal-stage run: frames [first_frame, first_frame + frames) of the shot at the generation
// fps. `latents` is [F, C, h, w] for diffusion renderers; `extra` as above. Checkpointed per segment.
struct SegmentLatents {
  MessageHeader header;
  int segment = 0;
  int64_t first_frame = 0;
  int64_t frames = 0;
  at::Tensor latents;
  io::TensorMap extra;
};

// Every segment of a shot, in order; read (never written) by the decode chunks.
struct ShotLatents {
  ShotJob job;
  KeyframeLatents keyframes;
  std::vector<SegmentLatents> segments;
};

// One decode chunk to run: frames [batch * plan.batch_frames, …) of the shot.
struct DecodeWork {
  MessageHeader header;  // seq = run-global batch number
  std::shared_ptr<ShotRun> run;
  std::shared_ptr<const ShotLatents> latents;
  int batch = 0;
};

// Frames in display order. After decode: generation raster and fps; after post: the preset's raster
// and fps (retiming can change the count; the post flush is appended to the shot's last batch).
struct FrameBatch {
  MessageHeader header;  // seq = run-global batch number
  std::shared_ptr<ShotRun> run;
  int batch = 0;
  int batches = 0;
  int64_t first_frame = 0;  // index of frames[0] in the shot at the generation fps
  std::vector<stages::Frame> frames;
  bool last() const { return batch + 1 == batches; }
};

// A finished output file (already renamed to its final name).
struct EncodedClip {
  MessageHeader header;
  std::shared_ptr<ShotRun> run;
  std::filesystem::path output;
  int64_t frames = 0;
  double duration = 0;
};

}  // namespace clipgen::pipeline
