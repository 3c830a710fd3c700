#include "stages/keyframe_vae.h"

#include <cmath>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "core/error.h"
#include "models/blocks/layers.h"
#include "models/io/safetensors.h"
#include "models/io/single_file.h"
#include "models/io/state_dict.h"

namespace clipgen::stages {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

AutoencoderKL build(const json& cfg_json, const io::TensorMap& weights, const std::string& source) {
  const auto cfg = AutoencoderKLConfig::from_json(cfg_json, source);
  AutoencoderKL vae{nullptr};
  {
    blocks::EmptyInitGuard g;
    vae = AutoencoderKL(cfg);
  }
  io::load_state_dict(*vae, weights, source);
  vae->eval();
  return vae;
}

// A standalone VAE file with diffusers names: the config.json values its shapes tell; the rest (norm
// groups, sample size) are the published SD settings.
AutoencoderKL load_diffusers_named_file(const io::SafetensorsFile& f, const std::string& src, double scaling) {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& t : f.tensors()) shapes[t.name] = t.shape;
  auto need = [&](const std::string& k, size_t rank) -> const std::vector<int64_t>& {
    auto it = shapes.find(k);
    if (it == shapes.end()) throw ModelLoadError(src, k, "required tensor is missing (not a complete AutoencoderKL)");
    if (it->second.size() != rank)
      throw ModelLoadError(src, k, "expected a rank-" + std::to_string(rank) + " tensor");
    return it->second;
  };
  std::vector<int64_t> channels;
  for (int i = 0; shapes.count("encoder.down_blocks." + std::to_string(i) + ".resnets.0.conv2.weight"); ++i)
    channels.push_back(need("encoder.down_blocks." + std::to_string(i) + ".resnets.0.conv2.weight", 4)[0]);
  if (channels.empty()) need("encoder.down_blocks.0.resnets.0.conv2.weight", 4);
  std::set<std::string> res0;
  const std::string p0 = "encoder.down_blocks.0.resnets.";
  for (const auto& [k, s] : shapes)
    if (starts_with(k, p0)) res0.insert(k.substr(p0.size(), k.find('.', p0.size()) - p0.size()));
  json c = {{"_class_name", "AutoencoderKL"},
            {"act_fn", "silu"},
            {"in_channels", need("encoder.conv_in.weight", 4)[1]},
            {"out_channels", need("decoder.conv_out.weight", 4)[0]},
            {"latent_channels", need("decoder.conv_in.weight", 4)[1]},
            {"block_out_channels", channels},
            {"layers_per_block", static_cast<int64_t>(res0.size())},
            {"down_block_types", std::vector<std::string>(channels.size(), "DownEncoderBlock2D")},
            {"up_block_types", std::vector<std::string>(channels.size(), "UpDecoderBlock2D")},
            {"norm_num_groups", 32},
            {"sample_size", 512},
            {"scaling_factor", scaling},
            {"force_upcast", true}};
  io::TensorMap w;
  for (const auto& t : f.tensors()) {
    auto v = f.view(t.name);
    w.emplace(t.name, c10::isFloatingType(v.scalar_type()) ? v.to(torch::kFloat) : v);
  }
  return build(c, w, src);
}

}  // namespace

AutoencoderKL load_vae(const fs::path& path, std::optional<double> standalone_scaling_factor) {
  const std::string src = path.string();
  if (fs::is_directory(path)) {
    if (!fs::exists(path / "config.json"))
      throw ModelLoadError(src, "", fs::exists(path / "model_index.json")
                                        ? "a diffusers pipeline folder, not a VAE: name its vae/ folder"
                                        : "not a diffusers AutoencoderKL folder (no config.json)");
    auto vae = load_autoencoder_kl(path);
    spdlog::info("{}: VAE (diffusers folder), scaling_factor {}", src, vae->scaling_factor());
    return vae;
  }
  const double standalone = standalone_scaling_factor.value_or(0.18215);  // diffusers' LDM default
  {
    auto f = io::SafetensorsFile::open(path);
    bool diffusers_names = false;
    for (const auto& t : f->tensors())
      if (starts_with(t.name, "encoder.down_blocks.") || starts_with(t.name, "decoder.up_blocks.")) diffusers_names = true;
    if (diffusers_names) {
      auto vae = load_diffusers_named_file(*f, src, standalone);
      spdlog::info("{}: standalone VAE (diffusers names), scaling_factor {}", src, vae->scaling_factor());
      return vae;
    }
  }
  // LDM layout: a full checkpoint (its first_stage_model.* only) or a standalone LDM VAE.
  io::SingleFileOverrides ov;
  ov.components = {"vae"};
  auto ck = io::load_single_file(path, ov, torch::kFloat);
  auto cfg = ck.plan.configs.at("vae");
  if (ck.plan.bare_vae) cfg["scaling_factor"] = standalone;
  auto vae = build(cfg, ck.components.at("vae"), src + " (vae)");
  spdlog::info("{}: VAE of the {}, scaling_factor {}", src,
               ck.plan.bare_vae ? std::string("standalone LDM file") : std::string(io::family_name(ck.family)) + " checkpoint",
               vae->scaling_factor());
  return vae;
}

void replace_vae(SDModel& m, const fs::path& path) {
  const auto& own = m.vae->config();
  auto vae = load_vae(path, own.scaling_factor);
  const auto& c = vae->config();
  const std::string model = "the keyframe model " + m.source;
  const int64_t latent = m.unet->config().in_channels;
  if (c.latent_channels != latent)
    throw ModelLoadError(path.string(), "",
                         fmt::format("this VAE has {} latent channels but {} works on {}: the VAE does not fit the model",
                                     c.latent_channels, model, latent));
  if (vae->downscale_factor() != m.vae->downscale_factor())
    throw ModelLoadError(path.string(), "",
                         fmt::format("this VAE scales images down by {} but {}'s VAE by {}: the VAE does not fit the model",
                                     vae->downscale_factor(), model, m.vae->downscale_factor()));
  if (std::abs(c.scaling_factor - own.scaling_factor) > 1e-6 * std::abs(own.scaling_factor) ||
      c.shift_factor.value_or(0.0) != own.shift_factor.value_or(0.0))
    throw ModelLoadError(path.string(), "",
                         fmt::format("this VAE's scaling_factor {} differs from {}'s {}: its latent space is another "
                                     "model family's (e.g. an SDXL VAE named for an SD 1.x model)",
                                     c.scaling_factor, model, own.scaling_factor));
  vae->to(m.device());
  m.vae = vae;
}

}  // namespace clipgen::stages
