// The run report: what happened to every shot of a `clipgen run` (written with --json-report and
// summarised on stderr when a run fails).
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace clipgen::pipeline {

enum class ShotStatus {
  Pending,    // not started (the run stopped before it was admitted)
  Planned,    // --dry-run: would render
  Skipped,    // output already complete for the same resolved shot (resume)
  Rendering,  // in the graph when the run stopped
  Done,
  Failed,     // this shot's stage threw
  Cancelled,  // stopped by a signal, the caller, or another shot's failure
};
const char* to_string(ShotStatus s);

struct ShotReport {
  std::string id;
  ShotStatus status = ShotStatus::Pending;
  std::filesystem::path output;
  int64_t frames = 0;          // frames in the output (expected frames until done)
  double duration = 0;         // seconds
  uint64_t seed = 0;
  std::string renderer;
  std::vector<std::string> devices;              // devices that ran a stage of this shot, first use first
  std::map<std::string, std::string> precision;  // device → what the models ran in there (diffusion renderers)
  std::map<std::string, double> stage_seconds;  // wall time per stage (decode/post/encode summed over batches)
  std::vector<std::string> warnings;
  std::string error;           // with shot and stage context
  std::vector<std::filesystem::path> partial;   // what remains on disk for an unfinished shot (checkpoints)
  std::vector<std::string> resumed_stages;      // stages restored from checkpoints
};

struct RunReport {
  std::vector<ShotReport> shots;
  std::vector<std::string> warnings;   // run-level (e.g. from validation)
  std::string error;                   // the failure that stopped the run, if any
  int exit_code = 0;
  double wall_seconds = 0;

  std::string to_json() const;  // pretty JSON, stable key order
  void write_json(const std::filesystem::path& path) const;  // atomic
  // Human summary: one line per shot (status, output or error) plus what partial results remain.
  std::string summary() const;
};

}  // namespace clipgen::pipeline
