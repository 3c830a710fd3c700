// Shared by the pipeline tests built on the tiny single-file SD 1.x fixture
// (tests/data/fixtures/single_file/sd15): where it is, its record, and a CLI run that keeps the keyframe
// checkpoint for comparison.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "models/io/safetensors.h"
#include "tests/pipeline/cli_test_util.h"
#include "tests/test_util.h"

namespace clipgen::test::sd15_file {

inline std::filesystem::path fixture() { return fixture_dir("single_file/sd15"); }
inline std::filesystem::path single_file() { return fixture() / "model.safetensors"; }
inline nlohmann::json record() { return nlohmann::json::parse(std::ifstream(fixture() / "fixture.json")); }

// Shot "tiny" (2 frames of the 64×64 test preset "tiny-square", seed 42, 2 Euler steps with CFG 7.5)
// followed by `models_block`, the lines under `models:`.
inline std::string tiny_shot_yaml(const std::string& models_block) {
  return R"(version: 1
id: tiny
preset: tiny-square
frames: 2
seed: 42
prompt: "a photo of a cat"
negative_prompt: "blurry"
sampler: {name: euler, steps: 2, guidance: 7.5}
models:
)" + models_block;
}

// Runs shot `id` (`shot` is its YAML) with its output name <id>.mp4 taken by a folder: keyframes are made and
// checkpointed, then the encoder cannot rename its file onto the folder, so the run fails (exit 1) and the
// keyframe stage's checkpoint (which a finished shot prunes) stays. Returns that checkpoint's tensors;
// `log` gets the CLI's output.
inline io::TensorMap keyframe_checkpoint(const std::filesystem::path& dir, const std::string& shot,
                                         const std::filesystem::path& presets, std::string* log = nullptr,
                                         const std::string& id = "tiny") {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  std::ofstream(dir / "shot.yaml") << shot;
  fs::create_directories(dir / "out" / (id + ".mp4") / "occupied");
  auto r = run_shot(dir / "shot.yaml", presets, dir / "out");
  if (log) *log = r.out;
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("stage encode"), std::string::npos) << r.out;
  const fs::path file = dir / "out" / ".clipgen" / id / "keyframes.safetensors";
  if (!fs::exists(file)) {
    ADD_FAILURE() << "no keyframe checkpoint " << file << "\n" << r.out;
    return {};
  }
  auto f = io::SafetensorsFile::open(file);
  io::TensorMap m;
  for (const auto& info : f->tensors()) m[info.name] = f->view(info.name).clone();
  return m;
}

inline bool same_bytes(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  auto ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

// Two keyframe checkpoints hold the same tensors, byte for byte (`what` names the two forms in failures).
inline void expect_same_checkpoints(const io::TensorMap& a, const io::TensorMap& b, const std::string& what) {
  EXPECT_EQ(a.size(), b.size()) << what;
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name << " missing: " << what;
    EXPECT_TRUE(same_bytes(t, b.at(name))) << name << " differs: " << what;
  }
}

}  // namespace clipgen::test::sd15_file
