// clipgen command-line entry point. Subcommands: run, validate, presets, version, fixture check.
// This is the single catch site: clipgen::Error::exit_code() decides the exit status
// (0 success, 1 runtime failure, 2 usage/config error, 130 cancelled) — see docs/cli.md.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <tbb/version.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <cstdlib>
#include <iostream>
#include <memory>

#include "configs/preset.h"
#include "configs/report.h"
#include "configs/shot.h"
#include "configs/train_recipe.h"
#include "core/error.h"
#include "core/version.h"
#include "models/runtime.h"
#include "parity/fixture.h"
#include "pipeline/progress.h"
#include "pipeline/render.h"
#include "pipeline/signals.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace clipgen;

namespace {

// Every option's default lives here (and nowhere else); --help shows them.
struct CliParams {
  int verbosity = 0;   // -v: +1, -q: -1
  std::vector<std::string> files;
  std::string out = "renders";
  std::string preset;  // empty: the shot file's preset
  std::string precision;  // empty: the shot file's precision
  std::vector<std::string> preset_dirs;
  std::string devices = "auto";
  int threads = 0;     // 0: usable cores
  bool dry_run = false;
  std::string json_report;
  bool force = false;
  int max_shots = 2;
  int max_batches = 4;
  int max_models = 2;
  std::string preset_name;  // `presets NAME`
  std::vector<std::string> fixture_dirs;
  std::string fixture_device = "cpu";
  std::string fixture_precision = "fp32";
  std::string recipe;  // `train RECIPE`
  train::TrainOptions train;
};

void add_preset_dirs(CLI::App* sub, CliParams& p) {
  sub->add_option("--preset-dir", p.preset_dirs, "extra folder(s) of user preset files (':'-separated in the env var)")
      ->envname("CLIPGEN_PRESET_DIRS")
      ->delimiter(':');
}

// Options shared by `run` and `validate`, declared once.
void add_shot_options(CLI::App* sub, CliParams& p) {
  sub->add_option("FILE", p.files, "shot files (YAML)")->required()->check(CLI::ExistingFile);
  sub->add_option("--out", p.out, "output root: outputs must stay inside it; checkpoints go to OUT/.clipgen")
      ->envname("CLIPGEN_OUT")
      ->capture_default_str();
  sub->add_option("--preset", p.preset, "delivery preset for every shot (overrides the shot files)")
      ->envname("CLIPGEN_PRESET");
  sub->add_option("--precision", p.precision,
                  "model precision for every shot: auto (fp32 on CPU, fp16 on CUDA), fp32, bf16 or fp16 "
                  "(overrides the shot files)")
      ->envname("CLIPGEN_PRECISION");
  add_preset_dirs(sub, p);
}

std::unique_ptr<pipeline::Progress> setup_logging(const CliParams& p) {
  const bool quiet = p.verbosity < 0;
  auto progress = std::make_unique<pipeline::Progress>(pipeline::Progress::detect(quiet),
                                                       pipeline::Progress::color_allowed());
  std::shared_ptr<spdlog::logger> logger;
  if (progress->mode() == pipeline::Progress::Mode::Live) {
    logger = std::make_shared<spdlog::logger>("clipgen", progress->log_sink());
    logger->set_pattern("[%H:%M:%S] %^%l%$: %v");
  } else {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(
        pipeline::Progress::color_allowed() ? spdlog::color_mode::automatic : spdlog::color_mode::never);
    logger = std::make_shared<spdlog::logger>("clipgen", sink);
    logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  }
  logger->set_level(p.verbosity < 0 ? spdlog::level::warn : p.verbosity == 0 ? spdlog::level::info : spdlog::level::debug);
  spdlog::set_default_logger(logger);
  return progress;
}

configs::LoadOptions load_options(const CliParams& p) {
  configs::LoadOptions o;
  o.out_root = fs::absolute(p.out).lexically_normal();
  if (!p.preset.empty()) o.preset_override = p.preset;
  if (!p.precision.empty()) o.precision_override = p.precision;
  for (const auto& d : p.preset_dirs) o.preset_dirs.emplace_back(d);
  return o;
}

std::string libav_version(unsigned v) {
  return fmt::format("{}.{}.{}", AV_VERSION_MAJOR(v), AV_VERSION_MINOR(v), AV_VERSION_MICRO(v));
}

int cmd_version() {
  auto r = runtime_info();
  fmt::print("clipgen {}\n", version_string());
  fmt::print("LibTorch {} ({} build)\n", r.torch_version, r.cuda_build ? "CUDA" : "CPU");
  fmt::print("BLAS {}\n", r.blas_backend);
  fmt::print("intra-op threads {} (inter-op {})\n", r.intra_op_threads, r.inter_op_threads);
  fmt::print("oneTBB {} (runtime {})\n", TBB_VERSION_STRING, TBB_runtime_version());
  fmt::print("libavcodec {}, libavformat {}, libavfilter {}, libavutil {}, libswscale {}, libswresample {}\n",
             libav_version(avcodec_version()), libav_version(avformat_version()), libav_version(avfilter_version()),
             libav_version(avutil_version()), libav_version(swscale_version()), libav_version(swresample_version()));
  fmt::print("devices {}\n", fmt::join(r.devices, ", "));
  fmt::print("CPU bf16 {}\n", r.cpu_native_bf16 ? "native (avx512_bf16/amx_bf16)" : "emulated (no avx512_bf16/amx_bf16)");
  fmt::print("C++ runtime {}\n", r.cxx_runtime);
  return 0;
}

int cmd_validate(const CliParams& p) {
  auto list = configs::load_shots({p.files.begin(), p.files.end()}, load_options(p));
  for (const auto& shot : list.shots) std::cout << configs::format_shot(shot) << "\n";
  for (const auto& w : list.warnings) std::cerr << w << "\n";
  std::cout << fmt::format("{} shot(s) valid, {} warning(s)\n", list.shots.size(), list.warnings.size());
  return 0;
}

int cmd_presets(const CliParams& p) {
  std::vector<fs::path> dirs(p.preset_dirs.begin(), p.preset_dirs.end());
  auto reg = configs::PresetRegistry::load(dirs);
  if (p.preset_name.empty()) std::cout << configs::format_preset_table(reg);
  else std::cout << configs::format_preset_detail(reg.get(p.preset_name));
  return 0;
}

int cmd_run(const CliParams& p) {
  auto progress = setup_logging(p);
  // libav's own log lines (encoder statistics, filter notices) would tear the progress display:
  // keep its errors only, or its warnings too with -v.
  av_log_set_level(p.verbosity > 0 ? AV_LOG_WARNING : AV_LOG_ERROR);
  const int threads = configure_threads(p.threads);
  spdlog::info("intra-op threads: {}{}", threads, p.threads == 0 ? " (usable cores)" : "");
  if (p.max_shots < 1 || p.max_batches < 1 || p.max_models < 1)
    throw UsageError("--max-shots, --max-batches and --max-models must be at least 1");

  pipeline::RunReport report;
  auto write_report = [&] {
    if (!p.json_report.empty()) {
      report.write_json(p.json_report);
      spdlog::info("run report written to {}", p.json_report);
    }
  };
  auto list = configs::load_shots({p.files.begin(), p.files.end()}, load_options(p));
  for (const auto& w : list.warnings) spdlog::warn("{}", w);

  pipeline::RenderOptions opt;
  opt.out_root = fs::absolute(p.out).lexically_normal();
  opt.devices = parse_device_list(p.devices);
  opt.force = p.force;
  opt.dry_run = p.dry_run;
  opt.graph.max_shots_in_flight = p.max_shots;
  opt.graph.max_batches_in_flight = p.max_batches;
  opt.max_resident_models = p.max_models;
  opt.progress = progress.get();
  spdlog::info("devices: {}", fmt::join(opt.devices, ", "));

  if (p.dry_run) {
    std::cout << pipeline::format_plan(pipeline::plan_shots(list, opt));
    pipeline::render_shots(list, opt, report);
    write_report();
    return 0;
  }
  pipeline::install_signal_handlers();
  try {
    pipeline::render_shots(list, opt, report);
  } catch (const Error& e) {
    report.error = e.what();
    report.exit_code = e.exit_code();
    progress.reset();  // end the live display before the summary
    std::cerr << "clipgen: run stopped; what remains:\n" << report.summary();
    write_report();
    throw;
  }
  progress.reset();
  write_report();
  int done = 0, skipped = 0;
  for (const auto& s : report.shots) {
    done += s.status == pipeline::ShotStatus::Done;
    skipped += s.status == pipeline::ShotStatus::Skipped;
  }
  spdlog::info("{} shot(s) rendered, {} skipped (complete), {:.1f} s", done, skipped, report.wall_seconds);
  return 0;
}

int cmd_fixture_check(const CliParams& p) {
  configure_threads(p.threads);
  const auto device = parity::parse_fixture_device(p.fixture_device);
  return parity::run_fixture_check(p.fixture_dirs, device, std::cout,
                                   parity::parse_fixture_precision(p.fixture_precision, device));
}

int cmd_train(const CliParams& p) {
  setup_logging(p);
  const int threads = configure_threads(p.threads);
  const auto recipe = configs::load_train_recipe(p.recipe);
  spdlog::info("training {} from {} on {} ({} intra-op threads); work folder {}", recipe.name, p.recipe, p.train.device,
               threads, recipe.work_dir.string());
  const auto r = train::train_keyframe_model(recipe, p.train);
  if (!r.complete && p.train.phase != "vae" && p.train.phase != "unet") {
    spdlog::info("not finished (vae {} / {} steps, unet {} / {} steps): run the same command again to resume", r.vae_steps,
                 recipe.vae.steps, r.unet_steps, recipe.unet.steps);
    return 0;
  }
  spdlog::info("done: vae {} steps ({:.1f} min), unet {} steps ({:.1f} min)", r.vae_steps, r.vae_seconds / 60, r.unet_steps,
               r.unet_seconds / 60);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CliParams p;
  CLI::App app{"clipgen — YAML shot descriptions to finished video clips"};
  app.require_subcommand(1);
  app.fallthrough();
  app.add_flag_function("-v,--verbose", [&p](int64_t n) { p.verbosity += static_cast<int>(n); }, "more log output (debug)");
  app.add_flag_function("-q,--quiet", [&p](int64_t n) { p.verbosity -= static_cast<int>(n); },
                        "warnings and errors only, no progress display");
  app.add_option("--threads", p.threads, "LibTorch intra-op threads (0 = the usable cores)")
      ->envname("CLIPGEN_THREADS")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);

  auto* run = app.add_subcommand("run", "Render shot files to video clips");
  add_shot_options(run, p);
  run->add_option("--devices", p.devices, "devices to render on: auto, cpu, cuda, cuda:0,cuda:1, ...")
      ->envname("CLIPGEN_DEVICES")
      ->capture_default_str();
  run->add_flag("--dry-run", p.dry_run, "resolve and plan every shot, render nothing");
  run->add_option("--json-report", p.json_report, "write a JSON run report to this file")->envname("CLIPGEN_JSON_REPORT");
  run->add_flag("--force", p.force, "re-render shots whose outputs are complete; ignore checkpoints");
  run->add_option("--max-shots", p.max_shots, "shots in flight at once")
      ->envname("CLIPGEN_MAX_SHOTS")
      ->capture_default_str();
  run->add_option("--max-batches", p.max_batches, "decoded frame batches in flight at once")
      ->envname("CLIPGEN_MAX_BATCHES")
      ->capture_default_str();
  run->add_option("--max-models", p.max_models,
                  "diffusion models kept loaded per device between shots (least recently used released first)")
      ->envname("CLIPGEN_MAX_MODELS")
      ->capture_default_str();

  auto* validate = app.add_subcommand("validate", "Check shot files and print the fully resolved shots");
  add_shot_options(validate, p);

  auto* presets = app.add_subcommand("presets", "List delivery presets, or show one in detail");
  presets->add_option("NAME", p.preset_name, "preset to show in detail");
  add_preset_dirs(presets, p);

  auto* version = app.add_subcommand("version", "Print versions and runtime facts");

  auto* fixture = app.add_subcommand("fixture", "Reference fixture tools");
  auto* check = fixture->add_subcommand("check", "Run fixture folders and compare with the reference outputs");
  check->add_option("DIR", p.fixture_dirs, "fixture folders (searched recursively for fixture.json)")->required();
  check->add_option("--device", p.fixture_device,
                    "device for the model runners: cpu, cuda (= cuda:0) or cuda:N; outputs are compared on the CPU, "
                    "TF32 is off on CUDA, and the tokenizer/rng/scheduler/single-file runners stay on the CPU")
      ->capture_default_str();
  check->add_option("--precision", p.fixture_precision,
                    "fp32, bf16 or fp16 (CUDA only): the SD and SVD pipeline fixtures run their models in it and "
                    "compare the end results within the bounds of docs/shot-schema.md#precision; other runners "
                    "stay fp32")
      ->capture_default_str();
  fixture->require_subcommand(1);

  auto* trn = app.add_subcommand("train", "Train the built-in model from a recipe (configs/train/*.yaml); reruns resume");
  trn->add_option("RECIPE", p.recipe, "training recipe (YAML)")->required()->check(CLI::ExistingFile);
  trn->add_option("--phase", p.train.phase, "all, vae, unet or export (export: write the folder from finished phases)")
      ->check(CLI::IsMember({"all", "vae", "unet", "export"}))
      ->capture_default_str();
  trn->add_option("--device", p.train.device, "cpu, cuda or cuda:N")->capture_default_str();
  trn->add_flag("--fresh", p.train.fresh, "start the phases that run from scratch (deletes their checkpoints)");
  trn->add_option("--max-minutes", p.train.max_minutes, "stop each phase after a checkpoint once this many minutes have passed")
      ->check(CLI::NonNegativeNumber);
  trn->add_option("--eval-every", p.train.eval_every, "UNet phase: pixel-judge evaluation every N steps (0: at the end)")
      ->capture_default_str();
  trn->add_option("--stop-at-step", p.train.stop_at_step, "stop each phase after a checkpoint at this step (resume later)")
      ->check(CLI::NonNegativeNumber);
  trn->add_option("--steps", p.train.steps, "override both phases' step counts (smoke runs)")->check(CLI::NonNegativeNumber);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (*run) return cmd_run(p);
    if (*validate) return cmd_validate(p);
    if (*presets) return cmd_presets(p);
    if (*version) {
      configure_threads(p.threads);
      return cmd_version();
    }
    if (*check) return cmd_fixture_check(p);
    if (*trn) return cmd_train(p);
  } catch (const Error& e) {
    std::cerr << "clipgen: error: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "clipgen: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
