// Tiny SD 2.x and SDXL diffusers pipeline folders assembled from the reference fixtures, for tests that
// render through the keyframe stage or the CLI. The fixture text encoders of those families have a
// 128-token vocabulary, while the real tokenizers emit ids up to 49407, so the text encoders are
// written out with their token embeddings widened to 49408 rows (the fixture's rows first, then seeded
// rows of the same mean and spread). Every other component is a symlink to its fixture folder. There is
// no reference output for these assemblies: tests compare against direct calls of the model classes,
// whose own parity is tested against the fixtures.
#pragma once
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "models/io/safetensors.h"
#include "tests/test_util.h"

namespace clipgen::test {

constexpr int64_t kClipVocab = 49408;

// The rows that widen token embedding `emb` [V, C] to kClipVocab: seeded normal draws with the mean and
// spread of the existing rows, float32 [kClipVocab − V, C].
inline at::Tensor extra_token_rows(const at::Tensor& emb, uint64_t seed) {
  const auto e = emb.to(torch::kFloat);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::randn({kClipVocab - e.size(0), e.size(1)}, gen) * e.std().item<double>() + e.mean().item<double>();
}

// Writes a text encoder folder: the fixture's config and weights, vocabulary widened to kClipVocab.
inline void widened_text_encoder(const std::filesystem::path& src, const std::filesystem::path& dst, uint64_t seed) {
  std::filesystem::create_directories(dst);
  auto cfg = nlohmann::json::parse(std::ifstream(src / "config.json"));
  cfg["vocab_size"] = kClipVocab;
  std::ofstream(dst / "config.json") << cfg.dump(2);
  auto t = io::load_safetensors(src / "model.safetensors");
  const std::string key = "text_model.embeddings.token_embedding.weight";
  t[key] = torch::cat({t.at(key), extra_token_rows(t.at(key), seed)}).contiguous();
  io::save_safetensors(dst / "model.safetensors", t);
}

namespace detail {
inline void link_fixture(const std::string& fixture, const std::filesystem::path& dst) {
  std::filesystem::create_directory_symlink(fixture_dir(fixture), dst);
}
inline void write_scheduler(const std::string& fixture, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir / "scheduler");
  std::filesystem::copy_file(fixture_dir("schedulers/" + fixture + "/scheduler_config.json"),
                             dir / "scheduler" / "scheduler_config.json");
}
}  // namespace detail

// model_index.json of a StableDiffusionPipeline (SD 1.x/2.x) with an Euler scheduler.
inline nlohmann::json sd_model_index() {
  return {{"_class_name", "StableDiffusionPipeline"},
          {"_diffusers_version", "0.27.2"},
          {"requires_safety_checker", false},
          {"scheduler", {"diffusers", "EulerDiscreteScheduler"}},
          {"text_encoder", {"transformers", "CLIPTextModel"}},
          {"tokenizer", {"transformers", "CLIPTokenizer"}},
          {"unet", {"diffusers", "UNet2DConditionModel"}},
          {"vae", {"diffusers", "AutoencoderKL"}}};
}

// model_index.json of a StableDiffusionXLPipeline with an Euler scheduler.
inline nlohmann::json sdxl_model_index(bool force_zeros_for_empty_prompt = true) {
  return {{"_class_name", "StableDiffusionXLPipeline"},
          {"_diffusers_version", "0.27.2"},
          {"force_zeros_for_empty_prompt", force_zeros_for_empty_prompt},
          {"scheduler", {"diffusers", "EulerDiscreteScheduler"}},
          {"text_encoder", {"transformers", "CLIPTextModel"}},
          {"text_encoder_2", {"transformers", "CLIPTextModelWithProjection"}},
          {"tokenizer", {"transformers", "CLIPTokenizer"}},
          {"tokenizer_2", {"transformers", "CLIPTokenizer"}},
          {"unet", {"diffusers", "UNet2DConditionModel"}},
          {"vae", {"diffusers", "AutoencoderKL"}}};
}

// SDXL base layout in `dir` (created): two widened text encoders, unet2d/sdxl, the fixture AutoencoderKL,
// the SD1 and SD2 tokenizers, Euler; `force_zeros_for_empty_prompt` in model_index.json.
inline std::filesystem::path tiny_sdxl(const std::filesystem::path& dir, bool force_zeros = true) {
  std::filesystem::create_directories(dir);
  const auto comp = fixture_dir("single_file/components");
  widened_text_encoder(comp / "text_encoder_sdxl", dir / "text_encoder", 101);
  widened_text_encoder(comp / "text_encoder_2_sdxl", dir / "text_encoder_2", 102);
  detail::link_fixture("unet2d/sdxl", dir / "unet");
  detail::link_fixture("vae/autoencoder_kl", dir / "vae");
  detail::link_fixture("clip_tokenizer/tokenizer_sd1", dir / "tokenizer");
  detail::link_fixture("clip_tokenizer/tokenizer_sd2", dir / "tokenizer_2");
  detail::write_scheduler("euler", dir);
  std::ofstream(dir / "model_index.json") << sdxl_model_index(force_zeros).dump(2);
  return dir;
}

// SD 2.x layout in `dir` (created): the widened OpenCLIP-style text encoder (gelu, hidden 48),
// unet2d/sd21 (linear projections, per-block heads), the fixture AutoencoderKL, the SD2 tokenizer (pads
// with "!") and a v-prediction Euler scheduler, as SD 2.1 768 ships.
inline std::filesystem::path tiny_sd21(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  widened_text_encoder(fixture_dir("single_file/components") / "text_encoder_sd21", dir / "text_encoder", 103);
  detail::link_fixture("unet2d/sd21", dir / "unet");
  detail::link_fixture("vae/autoencoder_kl", dir / "vae");
  detail::link_fixture("clip_tokenizer/tokenizer_sd2", dir / "tokenizer");
  detail::write_scheduler("euler_v_prediction", dir);
  std::ofstream(dir / "model_index.json") << sd_model_index().dump(2);
  return dir;
}

}  // namespace clipgen::test
