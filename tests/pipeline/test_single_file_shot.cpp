// A shot naming a single-file checkpoint (tests/data/fixtures/single_file/sd15, the LDM layout that
// diffusers' own conversion script wrote from the reference fixture folders) renders through the CLI,
// with its `models.keyframe.settings` taken from the fixture's record of what the shapes cannot tell,
// and gives byte-identical keyframe latents to the same shot rendered from the equivalent diffusers
// folder (the reference folders at the file's float16 precision). Bad files named in a shot fail the run
// with a clear error; the model cache tells the same file with other settings apart. The SD 2.1 (OpenCLIP
// layout, v-prediction) and SDXL (SGM layout, two text encoders) single-file fixtures do the same once their
// 128-token text encoders are widened to the real vocabulary, identically in file and folder.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "configs/shot.h"
#include "core/error.h"
#include "core/fs.h"
#include "models/io/safetensors.h"
#include "pipeline/diffusion_renderer.h"
#include "tests/pipeline/cli_test_util.h"
#include "tests/pipeline/single_file_test_util.h"
#include "tests/test_util.h"
#include "tests/tiny_pipelines.h"

using namespace clipgen;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using namespace test::sd15_file;

// `models.keyframe.settings` for the fixture file, from its "hyperparameters_not_in_shapes" record
// (the values diffusers' reference folders were built with), plus the UNet sample size of the reference
// folder's config.json: like diffusers' from_single_file, clipgen gives an SD 1.x file the published 64
// (512 px) — neither the shapes nor the yaml's LDM image_size set it — while the tiny folder says 16 (128 px),
// and the sample size sets the generation raster.
std::string settings_yaml() {
  const auto meta = record();
  const auto h = meta["hyperparameters_not_in_shapes"];
  const auto& u = h["unet"];
  const auto unet_config =
      json::parse(std::ifstream(fixture() / meta["components"]["unet"]["folder"].get<std::string>() / "config.json"));
  // SD 1.x style: one head count at every attention level and in the mid block.
  int heads = u["attention_heads_mid_block"].get<int>();
  for (const auto& [level, n] : u["attention_heads_per_level"].items()) EXPECT_EQ(n.get<int>(), heads) << level;
  std::ostringstream o;
  o << "      unet: {heads: " << heads << ", norm_groups: " << u["norm_num_groups"].get<int>()
    << ", upcast_attention: " << (u["upcast_attention"].get<bool>() ? "true" : "false")
    << ", sample_size: " << unet_config["sample_size"].get<int>() << "}\n";
  o << "      vae: {norm_groups: " << h["vae"]["norm_num_groups"].get<int>()
    << ", scaling_factor: " << h["vae"]["scaling_factor (pipeline setting)"].get<double>() << "}\n";
  o << "      text_encoder: {heads: " << h["text_encoder"]["num_attention_heads"].get<int>()
    << ", activation: " << h["text_encoder"]["hidden_act"].get<std::string>() << "}\n";
  return o.str();
}

// The diffusers pipeline folder the file was converted from (fixture.json "components": the reference
// folders' config.json and weights), with every floating tensor rounded to float16 as the file stores it;
// tokenizer, scheduler and model_index.json from tests/data/models/tiny-sd15 (whose parts are the same
// reference folders).
fs::path equivalent_folder(const fs::path& dir) {
  const auto meta = record();
  const fs::path tiny = test::data_dir() / "models" / "tiny-sd15";
  fs::create_directories(dir);
  fs::copy_file(tiny / "model_index.json", dir / "model_index.json");
  fs::create_directory_symlink(fs::canonical(tiny / "scheduler"), dir / "scheduler");
  fs::create_directory_symlink(fs::canonical(tiny / "tokenizer"), dir / "tokenizer");
  for (const auto& [comp, c] : meta["components"].items()) {
    const fs::path src = fixture() / c["folder"].get<std::string>();
    const std::string weights = c["weights"].get<std::string>();
    fs::create_directories(dir / comp);
    fs::copy_file(src / "config.json", dir / comp / "config.json");
    auto f = io::SafetensorsFile::open(src / weights);
    io::TensorMap t;
    for (const auto& info : f->tensors()) {
      auto v = f->view(info.name);
      t[info.name] = c10::isFloatingType(v.scalar_type()) ? v.to(torch::kHalf).to(torch::kFloat) : v.clone();
    }
    io::save_safetensors(dir / comp / weights, t);
  }
  return dir;
}


}  // namespace

TEST(SingleFileShot, RendersThroughTheCliExactlyAsTheEquivalentDiffusersFolder) {
  const auto dir = test::scratch_dir("single_file_shot");
  const auto presets = test::write_test_preset(dir / "presets", "tiny-square", 64, 64);
  const std::string file_block =
      "  keyframe:\n    path: " + single_file().string() + "\n    settings:\n" + settings_yaml();
  const auto folder = equivalent_folder(dir / "sd15-folder");

  auto a = keyframe_checkpoint(dir / "file", tiny_shot_yaml(file_block), presets);
  auto b = keyframe_checkpoint(dir / "folder", tiny_shot_yaml("  keyframe: " + folder.string() + "\n"), presets);
  ASSERT_TRUE(a.count("latents") && b.count("latents"));
  // The tiny model's native raster (UNet sample_size 16 × 8 = 128) in the square preset: 16×16 latents.
  // For the file this comes from settings.unet.sample_size (plan() reads the header with the settings);
  // without it the raster would be the SD 1.x default 512 (64×64 latents).
  EXPECT_EQ(a.at("latents").sizes(), (std::vector<int64_t>{1, 4, 16, 16}));
  EXPECT_GT(a.at("latents").abs().sum().item<double>(), 0);
  expect_same_checkpoints(a, b, "the single file and the diffusers folder");

  // Wrong settings change the result (the comparison can fail): 2 text-encoder heads instead of 4.
  std::string wrong = file_block;
  const auto at = wrong.find("text_encoder: {heads: 4");
  ASSERT_NE(at, std::string::npos) << wrong;
  wrong.replace(at, std::string("text_encoder: {heads: 4").size(), "text_encoder: {heads: 2");
  auto c = keyframe_checkpoint(dir / "wrong", tiny_shot_yaml(wrong), presets);
  ASSERT_TRUE(c.count("latents"));
  EXPECT_FALSE(same_bytes(a.at("latents"), c.at("latents")));

  // The whole shot renders: output with its 2 frames and the keyframe PNG beside it.
  const auto full = dir / "full";
  fs::create_directories(full);
  std::ofstream(full / "shot.yaml") << tiny_shot_yaml(file_block);
  auto r = test::run_shot(full / "shot.yaml", presets, full / "out");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(fs::exists(full / "out" / "tiny.keyframe0.png"));
  const std::string probe_cmd =
      "ffprobe -v error -count_frames -show_streams -of json " + test::quote(full / "out" / "tiny.mp4");
  std::string probe;
  if (FILE* p = popen(probe_cmd.c_str(), "r")) {
    std::array<char, 4096> buf{};
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) probe.append(buf.data(), n);
    pclose(p);
  }
  auto j = json::parse(probe);
  EXPECT_EQ(j["streams"][0]["nb_read_frames"], "2") << probe;
  EXPECT_EQ(j["streams"][0]["width"], 64) << probe;
}

TEST(SingleFileShot, WithoutTheSettingsTheTinyFileFailsClearly) {
  // The family's published CLIP-L setting (12 heads) does not fit the tiny text encoder's width 32: the
  // settings are what make this file loadable, and their absence is a clear run-time error.
  const auto dir = test::scratch_dir("single_file_shot_nosettings");
  const auto presets = test::write_test_preset(dir / "presets", "tiny-square", 64, 64);
  std::ofstream(dir / "shot.yaml") << tiny_shot_yaml("  keyframe: " + single_file().string() + "\n");
  auto r = test::run_shot(dir / "shot.yaml", presets, dir / "out");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("model.safetensors (text_encoder)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("not divisible by num_attention_heads 12"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("shot 'tiny'"), std::string::npos) << r.out;
}

TEST(SingleFileShot, BadFilesNamedInAShotFailTheRunClearly) {
  const auto dir = test::scratch_dir("single_file_shot_bad");
  const auto presets = test::write_test_preset(dir / "presets", "tiny-square", 64, 64);
  // A UNet-only file, and a file without its VAE, named as the keyframe model.
  {
    auto f = io::SafetensorsFile::open(single_file());
    io::TensorMap unet_only, no_vae;
    for (const auto& t : f->tensors()) {
      if (t.name.rfind("model.diffusion_model.", 0) == 0) unet_only[t.name] = f->view(t.name);
      if (t.name.rfind("first_stage_model.", 0) != 0) no_vae[t.name] = f->view(t.name);
    }
    io::save_safetensors(dir / "unet_only.safetensors", unet_only);
    io::save_safetensors(dir / "no_vae.safetensors", no_vae);
  }
  // A LoRA adapter (an unsupported kind of file) named as the keyframe model.
  io::save_safetensors(dir / "adapter.safetensors",
                       {{"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", torch::zeros({4, 32})},
                        {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", torch::zeros({32, 4})}});
  struct Case {
    const char* file;
    std::vector<const char*> says;
  };
  // (A UNet-only file has no text encoder to tell SD 1.x by; the tiny UNet's context width 32 is none of
  // the families', so it is refused as what it looks like.)
  for (const Case& c :
       {Case{"unet_only.safetensors", {"unet_only.safetensors", "unsupported checkpoint", "SD-style UNet", "SD 1.x, SD 2.x and SDXL"}},
        Case{"no_vae.safetensors", {"no_vae.safetensors", "holds no vae", "it holds only: unet, text_encoder"}},
        Case{"adapter.safetensors", {"adapter.safetensors", "LoRA adapter", "SD 1.x, SD 2.x and SDXL"}}}) {
    const auto sub = dir / fs::path(c.file).stem();
    fs::create_directories(sub);
    std::ofstream(sub / "shot.yaml") << tiny_shot_yaml("  keyframe:\n    path: " + (dir / c.file).string() +
                                                  "\n    settings: {text_encoder: {heads: 4}}\n");
    // The shot file itself is valid (the file exists and is a .safetensors file)...
    auto v = test::run_clipgen("validate " + test::quote(sub / "shot.yaml") + " --preset-dir " + test::quote(presets));
    EXPECT_EQ(v.code, 0) << v.out;
    // ...and rendering it fails with what is wrong with the file.
    auto r = test::run_shot(sub / "shot.yaml", presets, sub / "out");
    EXPECT_EQ(r.code, 1) << r.out;
    for (const char* s : c.says) EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
    EXPECT_FALSE(fs::exists(sub / "out" / "tiny.mp4"));
  }
}

TEST(SingleFileShot, ModelCacheKeysIncludeTheSettings) {
  c10::InferenceMode guard;
  const auto dir = test::scratch_dir("single_file_shot_cache");
  std::ofstream(dir / "shot.yaml") << tiny_shot_yaml("  keyframe:\n    path: " + single_file().string() +
                                                "\n    settings: {text_encoder: {heads: 4}}\n");
  std::ofstream(dir / "other.yaml") << tiny_shot_yaml("  keyframe:\n    path: " + single_file().string() +
                                                 "\n    settings: {text_encoder: {heads: 2}}\n");
  configs::LoadOptions opt;
  opt.preset_dirs = {test::write_test_preset(dir / "presets", "tiny-square", 64, 64)};
  opt.out_root = dir / "out";
  const auto a = configs::load_shots({dir / "shot.yaml"}, opt).shots.at(0).keyframe_model;
  const auto b = configs::load_shots({dir / "other.yaml"}, opt).shots.at(0).keyframe_model;
  pipeline::ModelCache cache;
  const c10::Device cpu(c10::kCPU);
  auto ma = cache.sd(a, cpu);
  EXPECT_EQ(ma.get(), cache.sd(a, cpu).get());  // reused
  auto mb = cache.sd(b, cpu);
  EXPECT_NE(ma.get(), mb.get());  // the same file with other settings is another model
  EXPECT_EQ(ma->text_encoder->config().encoder.num_attention_heads, 4);
  EXPECT_EQ(mb->text_encoder->config().encoder.num_attention_heads, 2);
}

namespace {

// A single-file fixture whose text encoders have the fixtures' 128-token vocabulary, made renderable: the
// token embeddings are widened to the real tokenizers' 49408 rows with the same seeded rows in the file
// (float16, as the file stores every tensor) and in the equivalent diffusers folder built from the reference
// folders the file was converted from (fixture.json "components", weights rounded to float16), with the
// given tokenizers, scheduler config and model_index.json.
struct Widen {
  std::string component, file_key;
  uint64_t seed;
};

struct FolderParts {
  std::vector<std::pair<std::string, std::string>> tokenizers;  // folder name → clip_tokenizer fixture
  json scheduler_config;
  json model_index;
};

struct Forms {
  fs::path file, folder;
};

Forms widened_forms(const std::string& fixture_name, const std::vector<Widen>& widen, const FolderParts& parts,
                    const fs::path& dir) {
  const fs::path fx = test::fixture_dir("single_file/" + fixture_name);
  const auto meta = json::parse(std::ifstream(fx / "fixture.json"));
  auto src = io::SafetensorsFile::open(fx / "model.safetensors");
  io::TensorMap file;
  for (const auto& info : src->tensors()) file[info.name] = src->view(info.name).clone();
  std::map<std::string, at::Tensor> rows;  // component → the float16 rows appended
  for (const auto& w : widen) {
    EXPECT_TRUE(file.count(w.file_key)) << w.file_key;
    rows[w.component] = test::extra_token_rows(file.at(w.file_key), w.seed).to(torch::kHalf);
    file[w.file_key] = torch::cat({file.at(w.file_key), rows[w.component]}).contiguous();
  }
  Forms out{dir / (fixture_name + ".safetensors"), dir / (fixture_name + "-folder")};
  fs::create_directories(dir);
  io::save_safetensors(out.file, file);

  const fs::path& f = out.folder;
  for (const auto& [comp, c] : meta["components"].items()) {
    const fs::path from = fx / c["folder"].get<std::string>();
    const std::string weights = c["weights"].get<std::string>();
    fs::create_directories(f / comp);
    auto cfg = json::parse(std::ifstream(from / "config.json"));
    auto w = io::SafetensorsFile::open(from / weights);
    io::TensorMap t;
    for (const auto& info : w->tensors()) t[info.name] = w->view(info.name).to(torch::kHalf).to(torch::kFloat);
    if (rows.count(comp)) {
      const std::string key = "text_model.embeddings.token_embedding.weight";
      t[key] = torch::cat({t.at(key), rows.at(comp).to(torch::kFloat)}).contiguous();
      cfg["vocab_size"] = test::kClipVocab;
    }
    std::ofstream(f / comp / "config.json") << cfg.dump(2);
    io::save_safetensors(f / comp / weights, t);
  }
  for (const auto& [name, tok] : parts.tokenizers)
    fs::create_directory_symlink(test::fixture_dir("clip_tokenizer/" + tok), f / name);
  fs::create_directories(f / "scheduler");
  std::ofstream(f / "scheduler" / "scheduler_config.json") << parts.scheduler_config.dump(2);
  std::ofstream(f / "model_index.json") << parts.model_index.dump(2);
  return out;
}

json fixture_scheduler(const std::string& name) {
  return json::parse(std::ifstream(test::fixture_dir("schedulers/" + name + "/scheduler_config.json")));
}

Forms sdxl_forms(const fs::path& dir) {
  FolderParts parts;
  parts.tokenizers = {{"tokenizer", "tokenizer_sd1"}, {"tokenizer_2", "tokenizer_sd2"}};
  parts.scheduler_config = fixture_scheduler("euler");
  parts.model_index = test::sdxl_model_index();
  return widened_forms("sdxl",
                       {{"text_encoder", "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight", 101},
                        {"text_encoder_2", "conditioner.embedders.1.model.token_embedding.weight", 102}},
                       parts, dir);
}

// The settings the SDXL fixture file needs (fixture.json "hyperparameters_not_in_shapes"; published SDXL
// files use the family defaults instead: 64-channel heads, 32 norm groups, scaling 0.13025, 12/20 text heads).
std::string sdxl_settings_yaml() {
  const auto h = json::parse(std::ifstream(test::fixture_dir("single_file/sdxl/fixture.json")))["hyperparameters_not_in_shapes"];
  std::ostringstream o;
  o << "      unet: {heads: " << h["unet"]["attention_heads_mid_block"].get<int>()
    << ", norm_groups: " << h["unet"]["norm_num_groups"].get<int>() << ", sample_size: 16}\n";
  o << "      vae: {norm_groups: " << h["vae"]["norm_num_groups"].get<int>()
    << ", scaling_factor: " << h["vae"]["scaling_factor (pipeline setting)"].get<double>() << "}\n";
  o << "      text_encoder: {heads: " << h["text_encoder"]["num_attention_heads"].get<int>()
    << ", activation: " << h["text_encoder"]["hidden_act"].get<std::string>() << "}\n";
  o << "      text_encoder_2: {heads: " << h["text_encoder_2"]["num_attention_heads"].get<int>()
    << ", activation: " << h["text_encoder_2"]["hidden_act"].get<std::string>() << "}\n";
  return o.str();
}

}  // namespace

TEST(SingleFileShot, SdxlFileRendersExactlyAsTheEquivalentDiffusersFolder) {
  // SDXL single files (what most SDXL checkpoints are published as) through the CLI: both text encoders,
  // pooled embedding and add_time_ids from the SGM layout give the folder's keyframe latents byte for byte.
  const auto dir = test::scratch_dir("single_file_shot_sdxl");
  const auto presets = test::write_test_preset(dir / "presets", "tiny-square", 64, 64);
  const auto forms = sdxl_forms(dir);
  const std::string file_block =
      "  keyframe:\n    path: " + forms.file.string() + "\n    settings:\n" + sdxl_settings_yaml();
  auto a = keyframe_checkpoint(dir / "file", tiny_shot_yaml(file_block), presets);
  auto b = keyframe_checkpoint(dir / "folder", tiny_shot_yaml("  keyframe: " + forms.folder.string() + "\n"), presets);
  ASSERT_TRUE(a.count("latents") && b.count("latents"));
  EXPECT_EQ(a.at("latents").sizes(), (std::vector<int64_t>{1, 4, 16, 16}));
  EXPECT_GT(a.at("latents").abs().sum().item<double>(), 0);
  expect_same_checkpoints(a, b, "the SDXL single file and the diffusers folder");
  // The comparison can fail: the second text encoder with 2 heads instead of 4 changes the latents.
  std::string wrong = file_block;
  const std::string te2 = "text_encoder_2: {heads: 4";
  const auto at = wrong.find(te2);
  ASSERT_NE(at, std::string::npos) << wrong;
  wrong.replace(at, te2.size(), "text_encoder_2: {heads: 2");
  auto c = keyframe_checkpoint(dir / "wrong", tiny_shot_yaml(wrong), presets);
  ASSERT_TRUE(c.count("latents"));
  EXPECT_FALSE(same_bytes(a.at("latents"), c.at("latents")));
}

TEST(SingleFileShot, Sd21FileRendersExactlyAsTheEquivalentDiffusersFolder) {
  // SD 2.x single files: OpenCLIP text encoder layout (cond_stage_model.model.*), v-prediction from the LDM
  // yaml's `parameterization: v`, per-level head counts given as head channels, upcast attention. The
  // folder's scheduler is what clipgen gives an SD 2.x file (diffusers' published SD 2.1 scheduler settings:
  // leading spacing, steps_offset 1, v_prediction), here as Euler since the shot names that sampler.
  const auto dir = test::scratch_dir("single_file_shot_sd21");
  const auto presets = test::write_test_preset(dir / "presets", "tiny-square", 64, 64);
  const fs::path fx = test::fixture_dir("single_file/sd21");
  const auto h = json::parse(std::ifstream(fx / "fixture.json"))["hyperparameters_not_in_shapes"];
  FolderParts parts;
  parts.tokenizers = {{"tokenizer", "tokenizer_sd2"}};
  parts.scheduler_config = fixture_scheduler("euler_v_prediction");
  parts.scheduler_config["timestep_spacing"] = "leading";
  parts.model_index = test::sd_model_index();
  const auto forms =
      widened_forms("sd21", {{"text_encoder", "cond_stage_model.model.token_embedding.weight", 103}}, parts, dir);
  // Head counts differ per level (2 at level 0, 4 in the mid block) at a constant 8 channels per head.
  for (const auto& [level, d] : h["unet"]["head_dim_per_level"].items()) ASSERT_EQ(d.get<int>(), 8) << level;
  std::ostringstream settings;
  settings << "      unet: {head_channels: 8, norm_groups: " << h["unet"]["norm_num_groups"].get<int>()
           << ", upcast_attention: true, sample_size: 16}\n"
           << "      vae: {scaling_factor: " << h["vae"]["scaling_factor (pipeline setting)"].get<double>() << "}\n"
           << "      text_encoder: {heads: " << h["text_encoder"]["num_attention_heads"].get<int>()
           << ", activation: " << h["text_encoder"]["hidden_act"].get<std::string>() << "}\n";
  const std::string file_block = "  keyframe:\n    path: " + forms.file.string() +
                                 "\n    original_config: " + (fx / "original_config.yaml").string() +
                                 "\n    settings:\n" + settings.str();
  auto a = keyframe_checkpoint(dir / "file", tiny_shot_yaml(file_block), presets);
  auto b = keyframe_checkpoint(dir / "folder", tiny_shot_yaml("  keyframe: " + forms.folder.string() + "\n"), presets);
  ASSERT_TRUE(a.count("latents") && b.count("latents"));
  EXPECT_EQ(a.at("latents").sizes(), (std::vector<int64_t>{1, 4, 16, 16}));
  expect_same_checkpoints(a, b, "the SD 2.1 single file and the diffusers folder");
  // The comparison can fail: epsilon instead of the yaml's v-prediction changes the latents.
  auto c = keyframe_checkpoint(dir / "eps", tiny_shot_yaml(file_block + "      prediction_type: epsilon\n"), presets);
  ASSERT_TRUE(c.count("latents"));
  EXPECT_FALSE(same_bytes(a.at("latents"), c.at("latents")));
}
