// `models.vae` (docs/shot-schema.md#models): a VAE replacing the keyframe model's own — a diffusers
// AutoencoderKL folder or a .safetensors file (full LDM/SGM checkpoint or standalone VAE). It reaches the
// Shot and the resolved JSON (so it changes the shot hash); an unset VAE leaves the JSON as it was; `none`
// clears a default. Bad values are in the bad-file corpus (tests/data/configs/bad/vae-*.yaml).
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "configs/shot.h"
#include "core/error.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace clipgen;
using namespace clipgen::configs;

namespace {

using test::write_file;

Shot load_one(const fs::path& file, const fs::path& root) {
  return load_shots({file}, LoadOptions{.out_root = root}).shots.at(0);
}

std::string error_of(const fs::path& file, const fs::path& root) {
  try {
    load_shots({file}, LoadOptions{.out_root = root});
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

const char* kHead = "version: 1\nid: a\nduration: 1\nprompt: x\n";

}  // namespace

TEST(ModelVae, FolderAndFilesReachTheShotAndTheResolvedJson) {
  const fs::path dir = test::scratch_dir("model_vae_forms");
  write_file(dir / "sd/model_index.json", "{}");
  write_file(dir / "vae-mse/config.json", R"({"_class_name": "AutoencoderKL"})");
  write_file(dir / "vae-ft-mse.safetensors", "x");
  write_file(dir / "plain.yaml", std::string(kHead) + "models: {keyframe: sd}\n");
  write_file(dir / "folder.yaml", std::string(kHead) + "models: {keyframe: sd, vae: vae-mse}\n");
  write_file(dir / "file.yaml", std::string(kHead) + "models: {keyframe: sd, vae: vae-ft-mse.safetensors}\n");
  write_file(dir / "none.yaml", std::string(kHead) + "models: {keyframe: sd, vae: none}\n");

  const auto plain = load_one(dir / "plain.yaml", dir / "out");
  const auto folder = load_one(dir / "folder.yaml", dir / "out");
  const auto file = load_one(dir / "file.yaml", dir / "out");
  const auto none = load_one(dir / "none.yaml", dir / "out");
  EXPECT_FALSE(plain.vae_model.has_value());
  EXPECT_FALSE(none.vae_model.has_value());
  ASSERT_TRUE(folder.vae_model && file.vae_model);
  EXPECT_EQ(folder.vae_model->kind, ModelRef::Kind::DiffusersFolder);
  EXPECT_EQ(folder.vae_model->path, dir / "vae-mse");
  EXPECT_EQ(folder.vae_model->spec, "vae-mse");
  EXPECT_EQ(file.vae_model->kind, ModelRef::Kind::SingleFile);
  EXPECT_EQ(file.vae_model->path, dir / "vae-ft-mse.safetensors");

  // Unset (or none): no "vae" in the resolved models, so shots written before models.vae hash as before.
  const auto jp = nlohmann::json::parse(plain.to_json())["models"];
  EXPECT_FALSE(jp.contains("vae"));
  EXPECT_EQ(jp, nlohmann::json::parse(none.to_json())["models"]);
  const auto jf = nlohmann::json::parse(folder.to_json())["models"]["vae"];
  EXPECT_EQ(jf["kind"], "diffusers_folder");
  EXPECT_EQ(jf["path"], (dir / "vae-mse").string());
  EXPECT_EQ(nlohmann::json::parse(file.to_json())["models"]["vae"]["path"], (dir / "vae-ft-mse.safetensors").string());
  EXPECT_NE(plain.to_json(), folder.to_json());
  EXPECT_NE(folder.to_json(), file.to_json());
}

TEST(ModelVae, DefaultsApplyAndNoneClearsThem) {
  const fs::path dir = test::scratch_dir("model_vae_defaults");
  write_file(dir / "sd.safetensors", "x");
  write_file(dir / "vae.safetensors", "x");
  write_file(dir / "list.yaml", R"(version: 1
defaults:
  duration: 1
  prompt: x
  models: {keyframe: sd.safetensors, vae: vae.safetensors}
shots:
  - id: inherits
  - id: own
    models: {vae: none}
)");
  const auto list = load_shots({dir / "list.yaml"}, LoadOptions{.out_root = dir / "out"});
  ASSERT_EQ(list.shots.size(), 2u);
  ASSERT_TRUE(list.shots[0].vae_model.has_value());
  EXPECT_EQ(list.shots[0].vae_model->path, dir / "vae.safetensors");
  EXPECT_EQ(list.shots[1].keyframe_model.path, dir / "sd.safetensors");  // models merge key by key
  EXPECT_FALSE(list.shots[1].vae_model.has_value());
}

TEST(ModelVae, ErrorsNameTheLineAndWhatIsWrong) {
  const fs::path dir = test::scratch_dir("model_vae_errors");
  write_file(dir / "sd/model_index.json", "{}");
  write_file(dir / "vae-bin/diffusion_pytorch_model.bin", "x");
  write_file(dir / "weird/config.json", "not json");
  write_file(dir / "vae.pt", "x");
  write_file(dir / "notes.txt", "x");
  struct Case {
    const char* value;
    const char* says;
  };
  for (const Case& c : {Case{"missing-vae", "(no such file or folder: "},
                        Case{"vae.pt", ".pt files are Python pickles"},
                        Case{"vae.bin", ".bin files are Python pickles"},
                        Case{"notes.txt", "(not a .safetensors file: "},
                        Case{"vae-bin", "(the folder has no config.json)"},
                        Case{"weird", "(its config.json describes no model class, not an AutoencoderKL)"},
                        Case{"sd", "(a diffusers pipeline folder: name its VAE folder, 'sd/vae')"}}) {
    SCOPED_TRACE(c.value);
    write_file(dir / "shot.yaml", std::string(kHead) + "models:\n  keyframe: sd\n  vae: " + c.value + "\n");
    const auto e = error_of(dir / "shot.yaml", dir / "out");
    EXPECT_NE(e.find((dir / "shot.yaml").string() + ":7:8: models.vae: expected a diffusers AutoencoderKL folder, "
                                                     "a .safetensors file or none, got '" + c.value + "'"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find(c.says), std::string::npos) << e;
  }
}
