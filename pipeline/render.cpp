#include "pipeline/render.h"

#include <algorithm>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "core/error.h"
#include "pipeline/diffusion_renderer.h"
#include "pipeline/procedural_renderer.h"
#include "pipeline/progress.h"

namespace clipgen::pipeline {
namespace fs = std::filesystem;

RendererFactory default_renderer_factory(int max_resident_models) {
  auto procedural = std::make_shared<ProceduralRenderer>();
  auto diffusion = std::make_shared<DiffusionRenderer>(
      std::make_shared<ModelCache>(static_cast<size_t>(std::max(1, max_resident_models))));
  return [procedural, diffusion](const configs::Shot& shot) -> std::shared_ptr<ShotRenderer> {
    using K = configs::ModelRef::Kind;
    if (shot.keyframe_model.kind == K::Procedural && !shot.temporal_model.has_weights()) return procedural;
    if (shot.keyframe_model.kind == K::Procedural)
      throw UnsupportedError(fmt::format(
          "shot '{}': temporal model '{}' with the procedural stand-in: a video model needs diffusion "
          "keyframes; use the built-in model or name a Stable Diffusion folder as models.keyframe",
          shot.id, shot.temporal_model.spec));
    return diffusion;  // plan() refuses what it cannot render yet, with the reason
  };
}

namespace {

struct Prepared {
  PlannedShot planned;
  std::shared_ptr<ShotRenderer> renderer;
  std::unique_ptr<CheckpointStore> store;
};

std::vector<Prepared> prepare(const configs::ShotList& list, const RenderOptions& options) {
  const auto factory =
      options.renderer_for ? options.renderer_for : default_renderer_factory(options.max_resident_models);
  std::vector<Prepared> out;
  for (const auto& shot : list.shots) {
    Prepared p;
    p.planned.shot = &shot;
    p.renderer = factory(shot);
    p.planned.renderer = p.renderer->name();
    p.planned.plan = p.renderer->plan(shot);
    const auto& plan = p.planned.plan;
    if (plan.frames <= 0 || plan.width <= 0 || plan.height <= 0 || plan.width > configs::Limits::max_dimension ||
        plan.height > configs::Limits::max_dimension || plan.frames > configs::Limits::max_frames)
      throw Error(fmt::format("shot '{}': renderer {} planned {}x{} × {} frames, outside the limits", shot.id,
                              p.planned.renderer, plan.width, plan.height, plan.frames));
    // The precision each device would run the models in; a precision no device of the run can use (fp16 on
    // a CPU-only run) fails here, before anything renders.
    std::string refused;
    for (const auto& name : options.devices) {
      try {
        const std::string prec = p.renderer->precision_on(shot, Device{0, name});
        if (!prec.empty()) p.planned.precision[name] = prec;
      } catch (const Error& e) {
        refused = e.what();
      }
    }
    if (p.planned.precision.empty() && !refused.empty())
      throw UnsupportedError(fmt::format("shot '{}': {}", shot.id, refused));
    if (options.checkpoints) {
      p.store = std::make_unique<CheckpointStore>(options.out_root, shot, p.planned.renderer, options.force);
      p.planned.complete = !options.force && p.store->output_complete(shot.output);
      p.planned.resumable = p.store->stages();
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

std::vector<PlannedShot> plan_shots(const configs::ShotList& list, const RenderOptions& options) {
  std::vector<PlannedShot> out;
  for (auto& p : prepare(list, options)) out.push_back(p.planned);
  return out;
}

std::string format_plan(const std::vector<PlannedShot>& plans) {
  std::string s;
  for (const auto& p : plans) {
    const auto& sh = *p.shot;
    s += fmt::format("{}: {} frames at {}/{} fps ({:.3f} s), preset {} {}x{}, renderer {}\n", sh.id, sh.frames, sh.fps.num,
                     sh.fps.den, sh.duration, sh.preset.name, sh.preset.width, sh.preset.height, p.renderer);
    s += fmt::format("  generate {}x{} at {}/{} fps: {} frames, {} keyframe(s), {} segment(s), {} decode batch(es) of {}\n",
                     p.plan.width, p.plan.height, p.plan.fps.num, p.plan.fps.den, p.plan.frames, p.plan.keyframes,
                     p.plan.segments, p.plan.batches(), p.plan.batch_frames);
    if (!p.precision.empty()) {
      s += "  models in";
      for (const auto& [dev, prec] : p.precision) s += " " + prec + " on " + dev;
      s += "\n";
    }
    s += "  output " + sh.output.string();
    if (p.complete) s += " (complete: would be skipped)";
    s += "\n";
    if (!p.resumable.empty()) {
      s += "  resumable:";
      for (const auto& r : p.resumable) s += " " + r;
      s += "\n";
    }
  }
  return s;
}

void render_shots(const configs::ShotList& list, const RenderOptions& options, RunReport& report) {
  const auto t0 = std::chrono::steady_clock::now();
  report = RunReport{};
  report.warnings = list.warnings;
  for (const auto& shot : list.shots) {
    ShotReport r;
    r.id = shot.id;
    r.output = shot.output;
    r.frames = shot.frames;
    r.duration = shot.duration;
    r.seed = shot.seed;
    report.shots.push_back(std::move(r));
  }
  auto finish_timing = [&] {
    report.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };

  auto prepared = prepare(list, options);
  std::vector<std::shared_ptr<ShotRun>> runs;
  std::vector<size_t> run_slot;  // report index of each run
  for (size_t i = 0; i < prepared.size(); ++i) {
    auto& p = prepared[i];
    auto& r = report.shots[i];
    r.renderer = p.planned.renderer;
    if (p.planned.complete) {
      r.status = ShotStatus::Skipped;
      spdlog::info("shot '{}': output complete for this shot ({}), skipped (use --force to re-render)", r.id,
                   r.output.string());
      continue;
    }
    if (options.dry_run) {
      r.status = ShotStatus::Planned;
      continue;
    }
    if (!p.planned.resumable.empty())
      spdlog::info("shot '{}': resuming, {} stage(s) saved in {}", r.id, p.planned.resumable.size(),
                   p.store->dir().string());
    fs::create_directories(p.planned.shot->output.parent_path());
    runs.push_back(std::make_shared<ShotRun>(*p.planned.shot, static_cast<int>(i), p.renderer, p.planned.plan,
                                             std::move(p.store)));
    run_slot.push_back(i);
  }
  auto collect = [&] {
    for (size_t k = 0; k < runs.size(); ++k) {
      auto snap = runs[k]->report();
      report.shots[run_slot[k]] = std::move(snap);
    }
    finish_timing();
  };
  if (runs.empty()) {
    finish_timing();
    return;
  }

  OutputStages outputs = options.outputs;
  if (!outputs.post || !outputs.encoder) {
    auto def = default_output_stages();
    if (!outputs.post) outputs.post = def.post;
    if (!outputs.encoder) outputs.encoder = def.encoder;
  }
  DevicePool pool(options.devices);
  RenderGraph graph(pool, outputs, options.graph, options.progress);
  try {
    graph.run(runs, options.cancel);
  } catch (const Error& e) {
    collect();
    report.error = e.what();
    report.exit_code = e.exit_code();
    throw;
  } catch (const std::exception& e) {
    collect();
    report.error = e.what();
    report.exit_code = 1;
    throw;
  }
  collect();
  spdlog::debug("graph: peak {} shot(s) and {} batch(es) in flight, {} device use(s)",
                graph.stats().peak_shots_in_flight.load(), graph.stats().peak_batches_in_flight.load(), pool.uses());
}

}  // namespace clipgen::pipeline
