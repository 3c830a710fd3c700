// `models.keyframe` as a mapping: {path, original_config, settings} for single-file checkpoints
// (docs/shot-schema.md#models). The plain path form keeps its meaning and its resolved JSON; settings
// reach ModelRef and the resolved JSON (so they change the shot hash); defaults merge per model.
// Bad values are in the bad-file corpus (tests/data/configs/bad/model-*.yaml).
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "configs/report.h"
#include "configs/shot.h"
#include "core/error.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace clipgen;
using namespace clipgen::configs;

namespace {

using test::write_file;

const char* kHead = "version: 1\nid: a\nduration: 1\nprompt: x\n";

}  // namespace

TEST(ModelSettings, MappingFormReadsPathOriginalConfigAndSettings) {
  const fs::path dir = test::scratch_dir("model_settings_map");
  write_file(dir / "ckpt/tiny.safetensors", "x");
  write_file(dir / "ckpt/tiny-ldm.yaml", "model: {}\n");
  write_file(dir / "shots/a.yaml", std::string(kHead) + R"(models:
  keyframe:
    path: ../ckpt/tiny.safetensors
    original_config: ../ckpt/tiny-ldm.yaml
    settings:
      prediction_type: v_prediction
      unet: {head_channels: 8, norm_groups: 16, upcast_attention: true, addition_time_embed_dim: 8, sample_size: 16}
      vae: {scaling_factor: 0.13025, norm_groups: 32, sample_size: 128}
      text_encoder: {heads: 4, activation: gelu, layers: 2}
      text_encoder_2: {heads: 4, activation: quick_gelu}
)");
  const auto shot = load_shots({dir / "shots/a.yaml"}, LoadOptions{.out_root = dir / "out"}).shots.at(0);
  const ModelRef& m = shot.keyframe_model;
  EXPECT_EQ(m.kind, ModelRef::Kind::SingleFile);
  EXPECT_EQ(m.path, dir / "ckpt/tiny.safetensors");
  EXPECT_EQ(m.spec, "../ckpt/tiny.safetensors");
  EXPECT_EQ(m.original_config, dir / "ckpt/tiny-ldm.yaml");
  EXPECT_FALSE(m.ignore_original_config);
  const ModelSettings& s = m.settings;
  EXPECT_EQ(s.prediction_type, "v_prediction");
  EXPECT_FALSE(s.unet_heads.has_value());
  EXPECT_EQ(s.unet_head_channels, 8);
  EXPECT_EQ(s.unet_norm_groups, 16);
  EXPECT_EQ(s.unet_upcast_attention, true);
  EXPECT_EQ(s.unet_addition_time_embed_dim, 8);
  EXPECT_EQ(s.unet_sample_size, 16);
  EXPECT_DOUBLE_EQ(*s.vae_scaling_factor, 0.13025);
  EXPECT_EQ(s.vae_norm_groups, 32);
  EXPECT_EQ(s.vae_sample_size, 128);
  EXPECT_EQ(s.text_encoder_heads, 4);
  EXPECT_EQ(s.text_encoder_activation, "gelu");
  EXPECT_EQ(s.text_encoder_layers, 2);
  EXPECT_EQ(s.text_encoder_2_heads, 4);
  EXPECT_EQ(s.text_encoder_2_activation, "quick_gelu");

  // The resolved JSON carries them, nested as written.
  const auto j = nlohmann::json::parse(shot.to_json())["models"]["keyframe"];
  EXPECT_EQ(j["kind"], "single_file");
  EXPECT_EQ(j["original_config"], (dir / "ckpt/tiny-ldm.yaml").string());
  EXPECT_EQ(j["settings"]["prediction_type"], "v_prediction");
  EXPECT_EQ(j["settings"]["unet"]["head_channels"], 8);
  EXPECT_EQ(j["settings"]["unet"]["upcast_attention"], true);
  EXPECT_EQ(j["settings"]["vae"]["scaling_factor"], 0.13025);
  EXPECT_EQ(j["settings"]["text_encoder"]["activation"], "gelu");
  EXPECT_FALSE(j["settings"]["unet"].contains("heads"));
  EXPECT_EQ(j, nlohmann::json::parse(m.to_json()));
  // `clipgen validate` shows them under the model.
  const std::string text = format_shot(shot);
  EXPECT_NE(text.find("    # original_config: " + (dir / "ckpt/tiny-ldm.yaml").string() + "\n"), std::string::npos) << text;
  EXPECT_NE(text.find("    # settings: " + j["settings"].dump() + "\n"), std::string::npos) << text;
}

TEST(ModelSettings, PlainFormIsUnchangedAndSettingsChangeTheResolvedShot) {
  const fs::path dir = test::scratch_dir("model_settings_plain");
  write_file(dir / "tiny.safetensors", "x");
  write_file(dir / "plain.yaml", std::string(kHead) + "models: {keyframe: tiny.safetensors}\n");
  write_file(dir / "map.yaml", std::string(kHead) + "models: {keyframe: {path: tiny.safetensors}}\n");
  write_file(dir / "set.yaml", std::string(kHead) + "models: {keyframe: {path: tiny.safetensors, settings: {unet: {heads: 4}}}}\n");
  write_file(dir / "none.yaml", std::string(kHead) + "models: {keyframe: {path: tiny.safetensors, original_config: none}}\n");
  auto load = [&](const char* f) {
    return load_shots({dir / f}, LoadOptions{.out_root = dir / "out"}).shots.at(0);
  };
  const Shot plain = load("plain.yaml"), map = load("map.yaml"), set = load("set.yaml"), none = load("none.yaml");
  // Exactly the earlier resolved form for a plain reference (kind, spec, path): existing shot hashes stay.
  const auto pj = nlohmann::json::parse(plain.keyframe_model.to_json());
  EXPECT_EQ(pj, nlohmann::json::parse(R"({"kind": "single_file", "spec": "tiny.safetensors", "path": ")" +
                                      (dir / "tiny.safetensors").string() + R"("})"));
  EXPECT_TRUE(plain.keyframe_model.settings.empty());
  EXPECT_TRUE(plain.keyframe_model.original_config.empty());
  // `{path: x}` means the same as `x`.
  // The resolved shots differ only in their source file name.
  auto resolved = [](const Shot& s) {
    auto j = nlohmann::json::parse(s.to_json());
    j.erase("source");
    return j;
  };
  EXPECT_EQ(plain.keyframe_model.to_json(), map.keyframe_model.to_json());
  EXPECT_EQ(resolved(plain), resolved(map));
  // Settings or `original_config: none` make another resolved shot (another checkpoint hash, another model).
  EXPECT_NE(resolved(plain), resolved(set));
  EXPECT_EQ(resolved(set)["models"]["keyframe"]["settings"], nlohmann::json::parse(R"({"unet": {"heads": 4}})"));
  EXPECT_EQ(set.keyframe_model.settings.unet_heads, 4);
  EXPECT_TRUE(none.keyframe_model.ignore_original_config);
  EXPECT_EQ(nlohmann::json::parse(none.keyframe_model.to_json())["original_config"], "none");
  EXPECT_NE(resolved(plain), resolved(none));
}

TEST(ModelSettings, DefaultsGiveEachShotTheWholeModelReference) {
  // `models:` merges key by key (keyframe, temporal); a shot's keyframe reference replaces the default's
  // whole mapping (its settings belong to its file).
  const fs::path dir = test::scratch_dir("model_settings_defaults");
  write_file(dir / "a.safetensors", "x");
  write_file(dir / "b.safetensors", "x");
  write_file(dir / "list.yaml", R"(version: 1
defaults:
  duration: 1
  prompt: x
  models:
    keyframe: {path: a.safetensors, settings: {text_encoder: {heads: 4}}}
shots:
  - id: inherits
  - id: own
    models: {keyframe: b.safetensors}
)");
  const auto list = load_shots({dir / "list.yaml"}, LoadOptions{.out_root = dir / "out"});
  ASSERT_EQ(list.shots.size(), 2u);
  EXPECT_EQ(list.shots[0].keyframe_model.path, dir / "a.safetensors");
  EXPECT_EQ(list.shots[0].keyframe_model.settings.text_encoder_heads, 4);
  EXPECT_EQ(list.shots[1].keyframe_model.path, dir / "b.safetensors");
  EXPECT_TRUE(list.shots[1].keyframe_model.settings.empty());
}

TEST(ModelSettings, CheckFilesOffStillTellsFoldersFromFiles) {
  const fs::path dir = test::scratch_dir("model_settings_nocheck");
  write_file(dir / "a.yaml", std::string(kHead) +
                            "models: {keyframe: {path: m.safetensors, original_config: m.yaml, settings: {unet: {heads: 8}}}}\n");
  write_file(dir / "b.yaml", std::string(kHead) + "models: {keyframe: {path: folder, settings: {unet: {heads: 8}}}}\n");
  LoadOptions o{.out_root = dir / "out"};
  o.check_files = false;
  const auto a = load_shots({dir / "a.yaml"}, o).shots.at(0).keyframe_model;
  EXPECT_EQ(a.kind, ModelRef::Kind::SingleFile);
  EXPECT_EQ(a.original_config, dir / "m.yaml");
  EXPECT_EQ(a.settings.unet_heads, 8);
  try {
    load_shots({dir / "b.yaml"}, o);
    FAIL() << "settings on a folder must be refused";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("models.keyframe.settings: expected settings only with a single .safetensors file"),
              std::string::npos)
        << e.what();
  }
}
