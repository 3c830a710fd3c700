// Per-shot checkpoints for resuming interrupted runs.
//
// Layout under the output root:   <out>/.clipgen/<shot id>/manifest.json
//                                 <out>/.clipgen/<shot id>/<stage>.safetensors   (keyframes, segment-0000, …)
// manifest.json: {"format": 1, "shot_id", "shot_hash", "renderer", "stages": {name: file},
//                 "output": {"path", "bytes", "frames"} | null}
// shot_hash is a 64-bit FNV-1a hash (hex) of the checkpoint format, the renderer name and the fully
// resolved shot (Shot::to_json()), so any change to the shot (prompt, seed, preset, models, output…)
// or the renderer invalidates what was saved. Every file is written atomically (temporary name, then
// rename), the stage file before the manifest that lists it.
//
// A rerun skips a shot whose output exists with the size the manifest recorded for the same hash
// (output_complete()), restores every stage listed in the manifest, and recomputes the rest.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "configs/shot.h"
#include "models/io/safetensors.h"

namespace clipgen::pipeline {

class CheckpointStore {
public:
  // Opens (does not create) the store of `shot`. A manifest with another hash is ignored (and
  // replaced on the first save). `force` ignores any existing manifest.
  CheckpointStore(const std::filesystem::path& out_root, const configs::Shot& shot, const std::string& renderer,
                  bool force = false);

  static std::string shot_hash(const configs::Shot& shot, const std::string& renderer);
  static std::filesystem::path dir_for(const std::filesystem::path& out_root, const std::string& shot_id);

  const std::filesystem::path& dir() const { return dir_; }
  const std::string& hash() const { return hash_; }

  // The shot's output exists and was recorded as complete for this hash.
  bool output_complete(const std::filesystem::path& output) const;
  void mark_output_complete(const std::filesystem::path& output, int64_t frames);

  bool has_stage(const std::string& name) const;
  std::optional<io::TensorMap> load_stage(const std::string& name) const;  // nullopt when absent
  void save_stage(const std::string& name, const io::TensorMap& tensors);
  std::vector<std::string> stages() const;
  // Files that currently hold saved work (for the run report).
  std::vector<std::filesystem::path> files() const;
  // Removes the shot's checkpoint folder (after the output is complete only the manifest is kept).
  void prune_stages();

private:
  void write_manifest_locked() const;

  std::filesystem::path dir_;
  std::string shot_id_, hash_, renderer_;
  mutable std::mutex mutex_;
  std::map<std::string, std::string> stages_;  // name → file name
  std::optional<std::filesystem::path> output_path_;
  int64_t output_bytes_ = -1, output_frames_ = 0;
};

}  // namespace clipgen::pipeline
