// `models.vae` through the CLI: a shot whose keyframe model is the tiny single-file SD 1.x fixture
// (tests/data/fixtures/single_file/sd15) and whose models.vae names the same VAE weights as
//  (a) a diffusers AutoencoderKL folder (the fixture VAE folder's config.json, weights at the file's
//      float16 precision),
//  (b) the single-file checkpoint itself (its VAE only is used),
//  (c) a standalone LDM-layout VAE file written here from the checkpoint's first_stage_model.* tensors with
//      the prefix stripped (as published VAE files are), and a diffusers-named standalone file,
// gives byte-identical keyframe checkpoints (latents and decoded images) to the shot without models.vae;
// a VAE with perturbed decoder weights leaves the latents alone and changes the image; a VAE that does not
// fit the model fails the run naming both files.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "models/io/safetensors.h"
#include "tests/pipeline/cli_test_util.h"
#include "tests/pipeline/single_file_test_util.h"
#include "tests/test_util.h"

using namespace clipgen;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using namespace test::sd15_file;

// The keyframe model: the single file with the settings its shapes cannot tell (the tiny text encoder's 4
// heads; the tiny UNet's sample size 16, so the raster is 128 px → 64 px preset: 16×16 latents).
std::string shot_yaml(const std::string& vae_line) {
  return tiny_shot_yaml(R"(  keyframe:
    path: )" + single_file().string() + R"(
    settings: {text_encoder: {heads: 4}, unet: {sample_size: 16}}
)" + vae_line);
}

// The checkpoint's first_stage_model.* tensors with the prefix stripped: a standalone LDM-layout VAE.
io::TensorMap ldm_vae_tensors() {
  auto f = io::SafetensorsFile::open(single_file());
  io::TensorMap t;
  const std::string prefix = "first_stage_model.";
  for (const auto& info : f->tensors())
    if (info.name.rfind(prefix, 0) == 0) t[info.name.substr(prefix.size())] = f->view(info.name).clone();
  return t;
}

// The fixture VAE folder the file's VAE was converted from (fixture.json), weights rounded to float16 as
// the file stores them: the same weights under diffusers names.
fs::path vae_folder(const fs::path& dir) {
  const auto meta = record();
  const auto& c = meta["components"]["vae"];
  const fs::path src = fixture() / c["folder"].get<std::string>();
  const std::string weights = c["weights"].get<std::string>();
  fs::create_directories(dir);
  fs::copy_file(src / "config.json", dir / "config.json", fs::copy_options::overwrite_existing);
  auto f = io::SafetensorsFile::open(src / weights);
  io::TensorMap t;
  for (const auto& info : f->tensors()) t[info.name] = f->view(info.name).to(torch::kHalf).to(torch::kFloat);
  io::save_safetensors(dir / weights, t);
  return dir;
}

}  // namespace

TEST(VaeShot, TheSameVaeInEveryFormGivesTheSameKeyframesAndAnotherVaeChangesTheImage) {
  const auto dir = test::scratch_dir("vae_shot");
  const auto presets = test::write_test_preset(dir / "presets", "tiny-square", 64, 64);

  const auto base = keyframe_checkpoint(dir / "base", shot_yaml(""), presets);
  ASSERT_TRUE(base.count("latents") && base.count("extra.images")) << "checkpoint lacks latents/images";
  EXPECT_EQ(base.at("latents").sizes(), (std::vector<int64_t>{1, 4, 16, 16}));
  EXPECT_GT(base.at("extra.images").std().item<double>(), 0);

  const auto folder = vae_folder(dir / "vae-folder");
  const auto ldm = ldm_vae_tensors();
  ASSERT_TRUE(ldm.count("encoder.conv_in.weight") && ldm.count("decoder.up.0.block.0.conv1.weight"));
  io::save_safetensors(dir / "vae-ldm.safetensors", ldm);
  // A diffusers-named standalone file: the folder's weights file on its own, without config.json.
  fs::copy_file(folder / "diffusion_pytorch_model.safetensors", dir / "vae-diffusers.safetensors");

  struct Case {
    const char* name;
    fs::path vae;
    std::vector<std::string> logged;  // the loader's line: the VAE was loaded from here, as this form
  };
  for (const Case& c :
       {Case{"folder", folder, {"VAE (diffusers folder)"}},
        Case{"single-file", single_file(), {"VAE of the SD 1.x checkpoint", "of other components"}},
        Case{"ldm-file", dir / "vae-ldm.safetensors", {"standalone VAE file (LDM layout)", "VAE of the standalone LDM file"}},
        Case{"diffusers-file", dir / "vae-diffusers.safetensors", {"standalone VAE (diffusers names)"}}}) {
    SCOPED_TRACE(c.name);
    std::string log;
    auto k = keyframe_checkpoint(dir / c.name, shot_yaml("  vae: " + c.vae.string() + "\n"), presets, &log);
    EXPECT_NE(log.find(c.vae.string() + ": "), std::string::npos) << log;
    for (const auto& s : c.logged) EXPECT_NE(log.find(s), std::string::npos) << s << "\n" << log;
    expect_same_checkpoints(base, k, "no models.vae vs models.vae = " + c.vae.string());
  }

  // Another VAE: the LDM file with its decoder's last convolution perturbed. Latents stay; images change.
  auto other = ldm;
  other.at("decoder.conv_out.weight") = other.at("decoder.conv_out.weight") * 1.5;
  io::save_safetensors(dir / "vae-other.safetensors", other);
  auto k = keyframe_checkpoint(dir / "other", shot_yaml("  vae: " + (dir / "vae-other.safetensors").string() + "\n"), presets);
  ASSERT_TRUE(k.count("latents") && k.count("extra.images"));
  EXPECT_TRUE(same_bytes(base.at("latents"), k.at("latents")));
  EXPECT_FALSE(same_bytes(base.at("extra.images"), k.at("extra.images")));
  EXPECT_GT((base.at("extra.images") - k.at("extra.images")).abs().max().item<double>(), 1e-3);
}

TEST(VaeShot, AVaeThatDoesNotFitTheModelFailsTheRunNamingBothFiles) {
  const auto dir = test::scratch_dir("vae_shot_misfit");
  const auto presets = test::write_test_preset(dir / "presets", "tiny-square", 64, 64);
  auto ldm = ldm_vae_tensors();
  // 8 latent channels: decoder.conv_in takes 8, the encoder writes 2×8 moments.
  {
    auto t = ldm;
    auto w = t.at("decoder.conv_in.weight");
    t["decoder.conv_in.weight"] = torch::cat({w, w}, 1);
    auto eo = t.at("encoder.conv_out.weight"), eb = t.at("encoder.conv_out.bias");
    t["encoder.conv_out.weight"] = torch::cat({eo, eo}, 0);
    t["encoder.conv_out.bias"] = torch::cat({eb, eb}, 0);
    auto q = t.at("quant_conv.weight");
    t["quant_conv.weight"] = torch::zeros({16, 16, 1, 1}, q.options());
    t["quant_conv.bias"] = torch::zeros({16}, q.options());
    t["post_quant_conv.weight"] = torch::zeros({8, 8, 1, 1}, q.options());
    t["post_quant_conv.bias"] = torch::zeros({8}, q.options());
    io::save_safetensors(dir / "vae8.safetensors", t);
  }
  // A diffusers folder whose config says another scaling factor (an SDXL VAE's 0.13025).
  {
    const auto meta = record();
    const fs::path src = fixture() / meta["components"]["vae"]["folder"].get<std::string>();
    fs::create_directories(dir / "vae-xl");
    auto cfg = json::parse(std::ifstream(src / "config.json"));
    cfg["scaling_factor"] = 0.13025;
    std::ofstream(dir / "vae-xl" / "config.json") << cfg.dump(2);
    fs::copy_file(src / "diffusion_pytorch_model.safetensors", dir / "vae-xl" / "diffusion_pytorch_model.safetensors");
  }
  struct Case {
    fs::path vae;
    std::vector<std::string> says;
  };
  for (const Case& c : {Case{dir / "vae8.safetensors", {"vae8.safetensors", "8 latent channels", "works on 4"}},
                        Case{dir / "vae-xl", {"vae-xl", "scaling_factor 0.13025", "0.18215", "another model family"}}}) {
    SCOPED_TRACE(c.vae.string());
    const auto sub = dir / c.vae.stem();
    fs::create_directories(sub);
    std::ofstream(sub / "shot.yaml") << shot_yaml("  vae: " + c.vae.string() + "\n");
    auto r = test::run_shot(sub / "shot.yaml", presets, sub / "out");
    EXPECT_EQ(r.code, 1) << r.out;
    for (const auto& s : c.says) EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
    EXPECT_NE(r.out.find(single_file().string()), std::string::npos) << "names the keyframe model\n" << r.out;
    EXPECT_FALSE(fs::exists(sub / "out" / "tiny.mp4"));
  }
}
