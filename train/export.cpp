#include "train/export.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/fs.h"

namespace clipgen::train {

namespace fs = std::filesystem;
using nlohmann::json;

std::filesystem::path tokenizer_data_dir() {
  if (const char* env = std::getenv("CLIPGEN_MODEL_DATA"); env && *env) return fs::path(env) / "clip_tokenizer";
  return fs::path(CLIPGEN_MODEL_DATA_DIR) / "clip_tokenizer";
}

namespace {

void write_json(const fs::path& p, const json& j) { atomic_write_file(p, j.dump(2) + "\n"); }

void write_weights(const fs::path& p, const io::TensorMap& w) {
  io::TensorMap half;
  for (const auto& [k, t] : w) half[k] = t.to(torch::kHalf).contiguous();
  io::save_safetensors(p, half, {{"format", "pt"}});
}

json diffusers_config(const std::string& text, const char* class_name) {
  json j = json::parse(text);
  j["_class_name"] = class_name;
  j["_diffusers_version"] = "0.27.2";
  return j;
}

}  // namespace

void export_keyframe_pipeline(const fs::path& folder, const ExportedComponents& c) {
  const fs::path tmp = folder.parent_path() / (folder.filename().string() + ".partial");
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  for (const char* sub : {"text_encoder", "tokenizer", "unet", "vae", "scheduler"}) fs::create_directories(tmp / sub);

  write_json(tmp / "model_index.json", {{"_class_name", "StableDiffusionPipeline"},
                                        {"_diffusers_version", "0.27.2"},
                                        {"_name_or_path", c.name},
                                        {"feature_extractor", {nullptr, nullptr}},
                                        {"image_encoder", {nullptr, nullptr}},
                                        {"requires_safety_checker", false},
                                        {"safety_checker", {nullptr, nullptr}},
                                        {"scheduler", {"diffusers", "DDIMScheduler"}},
                                        {"text_encoder", {"transformers", "CLIPTextModel"}},
                                        {"tokenizer", {"transformers", "CLIPTokenizer"}},
                                        {"unet", {"diffusers", "UNet2DConditionModel"}},
                                        {"vae", {"diffusers", "AutoencoderKL"}}});
  json te = json::parse(c.text_encoder_config);
  te["architectures"] = {"CLIPTextModel"};
  te["model_type"] = "clip_text_model";
  te["torch_dtype"] = "float16";
  te["transformers_version"] = "4.37.2";
  write_json(tmp / "text_encoder" / "config.json", te);
  write_weights(tmp / "text_encoder" / "model.safetensors", c.text_encoder);
  for (const auto& e : fs::directory_iterator(tokenizer_data_dir()))
    fs::copy_file(e.path(), tmp / "tokenizer" / e.path().filename(), fs::copy_options::overwrite_existing);
  write_json(tmp / "unet" / "config.json", diffusers_config(c.unet_config, "UNet2DConditionModel"));
  write_weights(tmp / "unet" / "diffusion_pytorch_model.safetensors", c.unet);
  json vae = diffusers_config(c.vae_config, "AutoencoderKL");
  vae["scaling_factor"] = c.scaling_factor;
  write_json(tmp / "vae" / "config.json", vae);
  write_weights(tmp / "vae" / "diffusion_pytorch_model.safetensors", c.vae);
  json sched = json::parse(c.scheduler_config);
  if (!sched.contains("_class_name")) sched["_class_name"] = "DDIMScheduler";
  sched["_diffusers_version"] = "0.27.2";
  write_json(tmp / "scheduler" / "scheduler_config.json", sched);

  const fs::path old = folder.parent_path() / (folder.filename().string() + ".old");
  fs::remove_all(old);
  if (fs::exists(folder)) fs::rename(folder, old);
  fs::rename(tmp, folder);
  fs::remove_all(old);
}

}  // namespace clipgen::train
