#include "pipeline/report.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "core/version.h"

namespace clipgen::pipeline {

const char* to_string(ShotStatus s) {
  switch (s) {
    case ShotStatus::Pending: return "pending";
    case ShotStatus::Planned: return "planned";
    case ShotStatus::Skipped: return "skipped";
    case ShotStatus::Rendering: return "rendering";
    case ShotStatus::Done: return "done";
    case ShotStatus::Failed: return "failed";
    case ShotStatus::Cancelled: return "cancelled";
  }
  return "?";
}

std::string RunReport::to_json() const {
  using nlohmann::ordered_json;
  ordered_json j;
  j["clipgen_version"] = version_string();
  j["exit_code"] = exit_code;
  j["wall_seconds"] = wall_seconds;
  j["error"] = error.empty() ? ordered_json(nullptr) : ordered_json(error);
  j["warnings"] = warnings;
  ordered_json arr = ordered_json::array();
  for (const auto& s : shots) {
    ordered_json o;
    o["id"] = s.id;
    o["status"] = to_string(s.status);
    o["output"] = s.output.string();
    o["frames"] = s.frames;
    o["duration"] = s.duration;
    o["seed"] = s.seed;
    o["renderer"] = s.renderer;
    o["devices"] = s.devices;
    o["precision"] = s.precision.empty() ? ordered_json(nullptr) : ordered_json(s.precision);
    ordered_json t = ordered_json::object();
    for (const auto& [k, v] : s.stage_seconds) t[k] = v;
    o["stage_seconds"] = t;
    o["warnings"] = s.warnings;
    o["error"] = s.error.empty() ? ordered_json(nullptr) : ordered_json(s.error);
    ordered_json partial = ordered_json::array();
    for (const auto& p : s.partial) partial.push_back(p.string());
    o["partial"] = partial;
    o["resumed_stages"] = s.resumed_stages;
    arr.push_back(std::move(o));
  }
  j["shots"] = std::move(arr);
  return j.dump(2) + "\n";
}

void RunReport::write_json(const std::filesystem::path& path) const {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  atomic_write_file(path, to_json());
}

std::string RunReport::summary() const {
  std::string out;
  for (const auto& s : shots) {
    out += fmt::format("  {:<24} {}", s.id, to_string(s.status));
    if (s.status == ShotStatus::Done || s.status == ShotStatus::Skipped || s.status == ShotStatus::Planned)
      out += fmt::format("{:<{}} {}", "", 9 - std::string(to_string(s.status)).size(), s.output.string());
    out += "\n";
    if (!s.error.empty()) out += "      error: " + s.error + "\n";
    for (const auto& p : s.partial) out += "      kept: " + p.string() + "\n";
  }
  return out;
}

}  // namespace clipgen::pipeline
