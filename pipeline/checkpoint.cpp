#include "pipeline/checkpoint.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"

namespace clipgen::pipeline {
namespace fs = std::filesystem;

namespace {
constexpr int kFormat = 1;

uint64_t fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}
}  // namespace

std::string CheckpointStore::shot_hash(const configs::Shot& shot, const std::string& renderer) {
  const std::string key = fmt::format("clipgen-checkpoint/{}\n{}\n{}", kFormat, renderer, shot.to_json());
  return fmt::format("{:016x}", fnv1a(key));
}

fs::path CheckpointStore::dir_for(const fs::path& out_root, const std::string& shot_id) {
  return out_root / ".clipgen" / shot_id;
}

CheckpointStore::CheckpointStore(const fs::path& out_root, const configs::Shot& shot, const std::string& renderer,
                                 bool force)
    : dir_(dir_for(out_root, shot.id)), shot_id_(shot.id), hash_(shot_hash(shot, renderer)), renderer_(renderer) {
  const auto manifest = dir_ / "manifest.json";
  if (force || !fs::exists(manifest)) return;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(manifest));
  } catch (const std::exception&) {
    return;  // a damaged manifest is treated as absent (it is rewritten on the next save)
  }
  if (j.value("format", 0) != kFormat || j.value("shot_hash", "") != hash_) return;
  if (j.contains("stages") && j["stages"].is_object())
    for (auto& [k, v] : j["stages"].items())
      if (v.is_string() && fs::exists(dir_ / v.get<std::string>())) stages_[k] = v.get<std::string>();
  if (j.contains("output") && j["output"].is_object()) {
    output_path_ = fs::path(j["output"].value("path", ""));
    output_bytes_ = j["output"].value("bytes", int64_t{-1});
    output_frames_ = j["output"].value("frames", int64_t{0});
  }
}

void CheckpointStore::write_manifest_locked() const {
  nlohmann::ordered_json j;
  j["format"] = kFormat;
  j["shot_id"] = shot_id_;
  j["shot_hash"] = hash_;
  j["renderer"] = renderer_;
  nlohmann::ordered_json st = nlohmann::ordered_json::object();
  for (const auto& [k, v] : stages_) st[k] = v;
  j["stages"] = st;
  if (output_path_)
    j["output"] = {{"path", output_path_->string()}, {"bytes", output_bytes_}, {"frames", output_frames_}};
  else
    j["output"] = nullptr;
  fs::create_directories(dir_);
  atomic_write_file(dir_ / "manifest.json", j.dump(2) + "\n");
}

bool CheckpointStore::output_complete(const fs::path& output) const {
  std::lock_guard lock(mutex_);
  if (!output_path_ || *output_path_ != output) return false;
  std::error_code ec;
  const auto size = fs::file_size(output, ec);
  return !ec && static_cast<int64_t>(size) == output_bytes_;
}

void CheckpointStore::mark_output_complete(const fs::path& output, int64_t frames) {
  std::lock_guard lock(mutex_);
  output_path_ = output;
  output_bytes_ = static_cast<int64_t>(fs::file_size(output));
  output_frames_ = frames;
  write_manifest_locked();
}

bool CheckpointStore::has_stage(const std::string& name) const {
  std::lock_guard lock(mutex_);
  return stages_.count(name) != 0;
}

std::optional<io::TensorMap> CheckpointStore::load_stage(const std::string& name) const {
  fs::path file;
  {
    std::lock_guard lock(mutex_);
    auto it = stages_.find(name);
    if (it == stages_.end()) return std::nullopt;
    file = dir_ / it->second;
  }
  auto map = io::load_safetensors(file);
  // Own the data (the loaded tensors alias the file mapping otherwise).
  for (auto& [k, t] : map) t = t.clone();
  return map;
}

void CheckpointStore::save_stage(const std::string& name, const io::TensorMap& tensors) {
  const std::string file = name + ".safetensors";
  fs::create_directories(dir_);
  io::save_safetensors(dir_ / file, tensors, {{"clipgen_shot_hash", hash_}, {"clipgen_stage", name}});
  std::lock_guard lock(mutex_);
  stages_[name] = file;
  output_path_.reset();
  write_manifest_locked();
}

std::vector<std::string> CheckpointStore::stages() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [k, v] : stages_) out.push_back(k);
  return out;
}

std::vector<fs::path> CheckpointStore::files() const {
  std::lock_guard lock(mutex_);
  std::vector<fs::path> out;
  for (const auto& [k, v] : stages_) out.push_back(dir_ / v);
  return out;
}

void CheckpointStore::prune_stages() {
  std::lock_guard lock(mutex_);
  std::error_code ec;
  for (const auto& [k, v] : stages_) fs::remove(dir_ / v, ec);
  stages_.clear();
  write_manifest_locked();
}

}  // namespace clipgen::pipeline
