// render_shot: the whole clipgen flow through the public API, in one small program.
//
//   example_render_shot examples/quickstart.yaml [OUT_DIR]
//
// 1. load and validate the shot file(s) into typed shots (configs::load_shots),
// 2. set up LibTorch threads and the progress display,
// 3. render every shot through the pipeline (pipeline::render_shots: the flow graph, checkpoints,
//    post-processing and encoding),
// 4. print the run report.
// With the built-in models this renders the procedural stand-in scene (clipgen's own diffusion model
// is not trained yet); shots naming diffusion models use those once their renderers are registered.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "configs/shot.h"
#include "core/error.h"
#include "models/runtime.h"
#include "pipeline/progress.h"
#include "pipeline/render.h"
#include "pipeline/signals.h"

namespace fs = std::filesystem;
using namespace clipgen;

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::cerr << "usage: " << argv[0] << " SHOT.yaml [OUT_DIR]\n";
    return 2;
  }
  const fs::path shot_file = argv[1];
  const fs::path out_root = fs::absolute(argc == 3 ? argv[2] : "renders");

  try {
    // 1. Shots: YAML → typed, validated, with presets resolved and paths inside the output root.
    configs::LoadOptions load;
    load.out_root = out_root;
    const configs::ShotList shots = configs::load_shots({shot_file}, load);
    for (const auto& w : shots.warnings) spdlog::warn("{}", w);
    for (const auto& s : shots.shots)
      spdlog::info("shot '{}': {} frames at {} fps, preset {}, seed {} -> {}", s.id, s.frames, s.fps.value(),
                   s.preset.name, s.seed, s.output.string());

    // 2. Runtime: LibTorch intra-op threads (0 = all usable cores), progress on stderr.
    spdlog::info("intra-op threads: {}", configure_threads(0));
    pipeline::Progress progress(pipeline::Progress::detect(false), pipeline::Progress::color_allowed());

    // 3. Render. Ctrl-C cancels cleanly: no half-written file is left under an output's name.
    pipeline::install_signal_handlers();
    pipeline::RenderOptions options;
    options.out_root = out_root;
    options.devices = parse_device_list("auto");
    options.progress = &progress;
    pipeline::RunReport report;
    try {
      pipeline::render_shots(shots, options, report);
    } catch (const Error&) {
      std::cerr << report.summary();  // what finished, what failed, which checkpoints remain
      throw;
    }

    // 4. Report: one line per shot, and the JSON form next to the outputs.
    std::cout << report.summary();
    report.write_json(out_root / "render_shot-report.json");
    return 0;
  } catch (const Error& e) {
    std::cerr << "render_shot: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "render_shot: " << e.what() << "\n";
    return 1;
  }
}
