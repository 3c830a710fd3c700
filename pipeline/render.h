// The top-level API: render a list of resolved shots to files. Used by `clipgen run` and
// examples/render_shot.cpp.
//
//   auto shots = configs::load_shots({"examples/shot.yaml"}, {.out_root = "renders"});
//   pipeline::RenderOptions opt;  opt.out_root = "renders";
//   pipeline::RunReport report;
//   pipeline::render_shots(shots, opt, report);   // throws on failure; `report` is filled either way
//
// Per shot: pick a renderer (RenderOptions::renderer_for), plan it, skip it when its output is already
// complete for the same resolved shot (pipeline/checkpoint.h; --force re-renders), restore finished
// stages from checkpoints, and run the rest through the RenderGraph (pipeline/graph.h).
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "configs/shot.h"
#include "pipeline/graph.h"
#include "pipeline/renderer.h"
#include "pipeline/report.h"
#include "pipeline/signals.h"

namespace clipgen::pipeline {

class Progress;

struct RenderOptions {
  std::filesystem::path out_root = "renders";  // checkpoints go to <out_root>/.clipgen/<shot id>/
  std::vector<std::string> devices{"cpu"};     // as parse_device_list() returns them
  bool force = false;                          // ignore finished outputs and checkpoints
  bool dry_run = false;                        // plan and report only
  bool checkpoints = true;                     // save stage outputs for resuming
  GraphOptions graph;
  Progress* progress = nullptr;
  const CancelToken* cancel = nullptr;         // besides SIGINT/SIGTERM (install_signal_handlers)
  int max_resident_models = 2;                 // per device, kept loaded between shots (ModelCache)
  RendererFactory renderer_for;                // empty: default_renderer_factory(max_resident_models)
  OutputStages outputs;                        // empty members: default_output_stages()
};

// Built-in models → ProceduralRenderer (see pipeline/procedural_renderer.h); diffusers folders and
// .safetensors files → DiffusionRenderer, whose ModelCache keeps at most `max_resident_models` models per
// device between shots.
RendererFactory default_renderer_factory(int max_resident_models = 2);

// stages::PostProcessor (libavfilter) and stages::Encoder (libav) for each shot. The writer stops at
// shot.frames frames (the generated frame count is rounded up, see generation_frames()) and repeats
// the last frame if post delivered fewer, so the clip has exactly the shot's frame count.
OutputStages default_output_stages();

// Renders `list.shots`; `report` gets one entry per shot (in order) and is complete when this returns
// or throws. Throws the first failure (clipgen::Error with "shot 'x', stage y" context) or
// CancelledError; UsageError for bad options.
void render_shots(const configs::ShotList& list, const RenderOptions& options, RunReport& report);

// The plan of each shot as render_shots() would run it (for --dry-run output and tests).
struct PlannedShot {
  const configs::Shot* shot = nullptr;
  std::string renderer;
  GenerationPlan plan;
  bool complete = false;                 // output already complete (would be skipped)
  std::vector<std::string> resumable;    // stages that would be restored
  std::map<std::string, std::string> precision;  // device → what the models would run in (diffusion renderers)
};
std::vector<PlannedShot> plan_shots(const configs::ShotList& list, const RenderOptions& options);
std::string format_plan(const std::vector<PlannedShot>& plans);

}  // namespace clipgen::pipeline
