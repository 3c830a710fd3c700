#include "configs/train_recipe.h"

#include <nlohmann/json.hpp>

#include "configs/yaml_reader.h"
#include "core/fs.h"

namespace clipgen::configs {

namespace {

using detail::Diagnostics;
using detail::Reader;
using detail::is_map;
using detail::is_seq;

// A YAML node as JSON (scalars: null, booleans, integers, numbers, else strings).
nlohmann::json to_json(const YAML::Node& n) {
  if (n.IsMap()) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& kv : n) j[kv.first.Scalar()] = to_json(kv.second);
    return j;
  }
  if (n.IsSequence()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& e : n) j.push_back(to_json(e));
    return j;
  }
  if (!n.IsDefined() || n.IsNull()) return nullptr;
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted
  if (s == "true" || s == "false") return s == "true";
  try {
    size_t used = 0;
    const long long v = std::stoll(s, &used);
    if (used == s.size()) return v;
  } catch (...) {
  }
  try {
    size_t used = 0;
    const double v = std::stod(s, &used);
    if (used == s.size()) return v;
  } catch (...) {
  }
  return s;
}

std::string model_config(Reader& r, const YAML::Node& n, const std::string& path) {
  if (!r.require_map(n, path, "a config.json written as a mapping")) return "{}";
  return to_json(n).dump();
}

void read_phase(Reader& r, const YAML::Node& n, const std::string& path, TrainPhase& p, bool vae) {
  if (!r.require_map(n, path, "steps, batch, lr, … and config")) return;
  std::vector<std::string> keys{"steps", "batch", "lr", "warmup", "weight_decay", "grad_clip", "ema", "object_weight", "config"};
  if (vae) keys.emplace_back("kl_weight");
  r.check_keys(n, path, keys);
  auto jp = [&](const char* k) { return detail::join_path(path, k); };
  if (auto v = r.integer(n["steps"], jp("steps"), 1, 10'000'000)) p.steps = *v;
  if (n["batch"])
    if (auto v = r.integer(n["batch"], jp("batch"), 1, 4096, "batch size limit")) p.batch = *v;
  if (n["lr"])
    if (auto v = r.number(n["lr"], jp("lr"), 0, 1, true)) p.lr = *v;
  if (n["warmup"])
    if (auto v = r.integer(n["warmup"], jp("warmup"), 0, 10'000'000)) p.warmup = *v;
  if (n["weight_decay"])
    if (auto v = r.number(n["weight_decay"], jp("weight_decay"), 0, 1)) p.weight_decay = *v;
  if (n["grad_clip"])
    if (auto v = r.number(n["grad_clip"], jp("grad_clip"), 0, 1e6)) p.grad_clip = *v;
  if (n["ema"])
    if (auto v = r.number(n["ema"], jp("ema"), 0, 0.99999)) p.ema = *v;
  if (n["object_weight"])
    if (auto v = r.number(n["object_weight"], jp("object_weight"), 0, 1000)) p.object_weight = *v;
  if (vae && n["kl_weight"])
    if (auto v = r.number(n["kl_weight"], jp("kl_weight"), 0, 1)) p.kl_weight = *v;
  p.model_config = model_config(r, n["config"], jp("config"));
}

}  // namespace

TrainRecipe load_train_recipe(const std::filesystem::path& file) {
  Diagnostics sink;
  Reader r(sink, file.string(), 0);
  TrainRecipe t;
  t.file = file;
  auto root = detail::load_yaml_file(file, r);
  if (!root) sink.throw_all();
  const YAML::Node& n = *root;
  if (!r.require_map(n, "", "a training recipe")) sink.throw_all();
  r.check_keys(n, "", {"name", "output", "work_dir", "seed", "raster", "landscape_fraction", "caption_dropout", "flip",
                       "checkpoint_minutes", "vae", "unet", "text_encoder", "scheduler", "samples"});
  if (n["name"])
    if (auto v = r.text(n["name"], "name", false)) t.name = *v;
  if (auto v = r.text(n["output"], "output", false)) {
    t.output = *v;
    if (t.output.is_relative()) t.output = file.parent_path() / t.output;
  }
  t.work_dir = "train-runs/" + t.name;
  if (n["work_dir"])
    if (auto v = r.text(n["work_dir"], "work_dir", false)) t.work_dir = *v;
  if (t.work_dir.is_relative()) t.work_dir = file.parent_path() / t.work_dir;
  if (n["seed"])
    if (auto v = r.unsigned64(n["seed"], "seed")) t.seed = *v;
  if (const auto& ra = n["raster"]; r.require_map(ra, "raster", "width and height (vertical)")) {
    r.check_keys(ra, "raster", {"width", "height"});
    if (auto v = r.integer(ra["width"], "raster.width", 16, 1024)) t.width = static_cast<int>(*v);
    if (auto v = r.integer(ra["height"], "raster.height", 16, 1024)) t.height = static_cast<int>(*v);
    if (t.width % 16 || t.height % 16) r.error(ra, "raster", "expected sides that are multiples of 16");
  }
  if (n["landscape_fraction"])
    if (auto v = r.number(n["landscape_fraction"], "landscape_fraction", 0, 1)) t.landscape_fraction = *v;
  if (n["caption_dropout"])
    if (auto v = r.number(n["caption_dropout"], "caption_dropout", 0, 1)) t.caption_dropout = *v;
  if (n["flip"])
    if (auto v = r.boolean(n["flip"], "flip")) t.flip = *v;
  if (n["checkpoint_minutes"])
    if (auto v = r.number(n["checkpoint_minutes"], "checkpoint_minutes", 0, 1e4, true)) t.checkpoint_minutes = *v;
  read_phase(r, n["vae"], "vae", t.vae, true);
  read_phase(r, n["unet"], "unet", t.unet, false);
  if (const auto& te = n["text_encoder"]; r.require_map(te, "text_encoder", "config")) {
    r.check_keys(te, "text_encoder", {"config"});
    t.text_encoder_config = model_config(r, te["config"], "text_encoder.config");
  }
  t.scheduler_config = model_config(r, n["scheduler"], "scheduler");
  if (const auto& s = n["samples"]; r.require_map(s, "samples", "prompts, steps, guidance")) {
    r.check_keys(s, "samples", {"prompts", "steps", "guidance"});
    if (!is_seq(s["prompts"])) {
      r.expected(s["prompts"], "samples.prompts", "a list of prompts");
    } else if (s["prompts"].size() == 0) {
      r.error(s["prompts"], "samples.prompts", "expected at least one prompt, got an empty list");
    } else {
      for (size_t i = 0; i < s["prompts"].size(); ++i)
        if (auto v = r.text(s["prompts"][i], "samples.prompts[" + std::to_string(i) + "]", false)) t.sample_prompts.push_back(*v);
    }
    if (s["steps"])
      if (auto v = r.integer(s["steps"], "samples.steps", 1, 1000)) t.sample_steps = static_cast<int>(*v);
    if (s["guidance"])
      if (auto v = r.number(s["guidance"], "samples.guidance", 0, 50)) t.sample_guidance = *v;
  }
  sink.throw_if_any();
  t.text = read_file(file);
  return t;
}

}  // namespace clipgen::configs
