// Fixture runner for single_file/*: a single-file checkpoint in the original LDM/SGM layout must load to
// exactly (bit for bit at the stored float16 precision) the tensors of the referenced diffusers /
// transformers folders under their names, use every tensor of the file, map each key as
// expected_keys.json says, and infer the architecture of the referenced config.json files.
#include <set>

#include <torch/torch.h>

#include "core/error.h"
#include "models/io/diffusers_folder.h"
#include "models/io/single_file.h"
#include "parity/fixture.h"

namespace clipgen::parity {
namespace {

using nlohmann::json;

// The overrides for what shapes cannot tell, from fixture.json → hyperparameters_not_in_shapes.
io::SingleFileOverrides overrides_from(const json& fx, FixtureContext& ctx) {
  io::SingleFileOverrides ov;
  if (!fx.contains("hyperparameters_not_in_shapes")) return ov;
  const auto& h = fx["hyperparameters_not_in_shapes"];
  const std::string family = fx.value("family", "");
  auto same_value = [](const json& per_level) -> std::optional<int> {
    std::optional<int> v;
    for (const auto& [k, x] : per_level.items()) {
      if (v && *v != x.get<int>()) return std::nullopt;
      v = x.get<int>();
    }
    return v;
  };
  if (h.contains("unet")) {
    const auto& u = h["unet"];
    if (family == "sd1" && u.contains("attention_heads_per_level")) {
      if (auto v = same_value(u["attention_heads_per_level"])) ov.unet_heads = *v;
    } else if (u.contains("head_dim_per_level")) {
      if (auto v = same_value(u["head_dim_per_level"])) ov.unet_head_channels = *v;
    }
    if (u.contains("norm_num_groups")) ov.unet_norm_num_groups = u["norm_num_groups"].get<int>();
    if (u.contains("upcast_attention")) ov.unet_upcast_attention = u["upcast_attention"].get<bool>();
    if (u.contains("addition_time_embed_dim")) ov.unet_addition_time_embed_dim = u["addition_time_embed_dim"].get<int>();
    // Settings the emitted config takes from the published family values: they must agree.
    auto expect = [&](const char* key, const json& published) {
      if (u.contains(key) && u[key] != published)
        ctx.fail(std::string("unet.") + key, "fixture value " + u[key].dump() + " differs from the published " + published.dump());
    };
    expect("resnet_norm_eps", 1e-5);
    expect("act_fn", "silu");
    expect("flip_sin_to_cos", true);
    expect("freq_shift", 0);
  }
  if (h.contains("vae")) {
    const auto& v = h["vae"];
    if (v.contains("norm_num_groups")) ov.vae_norm_num_groups = v["norm_num_groups"].get<int>();
    if (v.contains("scaling_factor (pipeline setting)")) ov.vae_scaling_factor = v["scaling_factor (pipeline setting)"].get<double>();
  }
  for (const char* te : {"text_encoder", "text_encoder_2"}) {
    if (!h.contains(te)) continue;
    const auto& t = h[te];
    std::optional<int> heads = t.contains("num_attention_heads") ? std::optional<int>(t["num_attention_heads"].get<int>()) : std::nullopt;
    std::optional<std::string> act = t.contains("hidden_act") ? std::optional<std::string>(t["hidden_act"].get<std::string>()) : std::nullopt;
    if (std::string(te) == "text_encoder") {
      ov.text_encoder_heads = heads;
      ov.text_encoder_act = act;
    } else {
      ov.text_encoder_2_heads = heads;
      ov.text_encoder_2_act = act;
    }
  }
  return ov;
}

// Per-level view of a config value that may be an int (same for every level) or a list.
json per_level(const json& v, size_t levels) {
  if (v.is_array()) return v;
  return json(std::vector<json>(levels, v));
}

// The config keys that determine the architecture a class builds.
void compare_config(FixtureContext& ctx, const std::string& comp, const json& got, const json& ref) {
  std::vector<std::string> keys;
  const bool unet = ref.value("_class_name", "") == "UNet2DConditionModel";
  const bool vae = ref.value("_class_name", "") == "AutoencoderKL";
  if (unet)
    keys = {"in_channels", "out_channels", "block_out_channels", "layers_per_block", "down_block_types", "up_block_types",
            "mid_block_type", "cross_attention_dim", "attention_head_dim", "transformer_layers_per_block",
            "use_linear_projection", "norm_num_groups", "norm_eps", "upcast_attention", "addition_embed_type",
            "addition_time_embed_dim", "projection_class_embeddings_input_dim", "act_fn", "flip_sin_to_cos", "freq_shift",
            "class_embed_type", "num_attention_heads", "time_embedding_type", "conv_in_kernel", "conv_out_kernel",
            "resnet_time_scale_shift", "only_cross_attention", "dual_cross_attention", "encoder_hid_dim"};
  else if (vae)
    keys = {"in_channels", "out_channels", "latent_channels", "block_out_channels", "layers_per_block", "down_block_types",
            "up_block_types", "norm_num_groups", "scaling_factor", "act_fn", "shift_factor"};
  else
    keys = {"architectures", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "hidden_act",
            "vocab_size", "max_position_embeddings", "layer_norm_eps", "eos_token_id", "bos_token_id"};
  if (ref.value("architectures", json::array()).dump().find("WithProjection") != std::string::npos) keys.push_back("projection_dim");
  std::string diffs;
  const size_t levels = ref.contains("block_out_channels") ? ref["block_out_channels"].size() : 0;
  for (const auto& k : keys) {
    json a = got.contains(k) ? got[k] : json(nullptr);
    json r = ref.contains(k) ? ref[k] : json(nullptr);
    if (unet && (k == "attention_head_dim" || k == "transformer_layers_per_block")) {
      a = per_level(a, levels);
      r = per_level(r, levels);
    }
    if (a.is_number() && r.is_number() ? a.get<double>() != r.get<double>() : a != r)
      diffs += " " + k + ": got " + a.dump() + " want " + r.dump() + ";";
  }
  Comparison c{comp + ".config", diffs.empty() ? 0.0 : 1.0, 0, diffs.empty(), diffs.empty() ? "" : "config differs:" + diffs};
  ctx.record(c);
}

}  // namespace

void register_single_file_runners() {
  runners()["single_file"] = [](FixtureContext& ctx) {
    const json& fx = ctx.fixture();
    auto ov = overrides_from(fx, ctx);
    const auto file = ctx.dir() / fx.value("file", "model.safetensors");
    auto ck = io::load_single_file(file, ov);

    static const std::map<std::string, io::SingleFileFamily> fam = {
        {"sd1", io::SingleFileFamily::SD1}, {"sd2", io::SingleFileFamily::SD2}, {"sdxl", io::SingleFileFamily::SDXL}};
    if (fx.contains("family")) {
      auto it = fam.find(fx["family"].get<std::string>());
      bool ok = it != fam.end() && it->second == ck.family;
      ctx.record({"family", ok ? 0.0 : 1.0, 0, ok, ok ? "" : std::string("detected ") + io::family_name(ck.family)});
    }

    // Every tensor of the file is used (or deliberately ignored as a known non-model key).
    std::set<std::string> used;
    for (const auto& [comp, m] : ck.plan.sources)
      for (const auto& [n, s] : m) used.insert(s.file_key);
    const size_t total = ck.file->tensors().size();
    std::string unused;
    for (const auto& t : ck.file->tensors())
      if (!used.count(t.name)) unused += " " + t.name;
    ctx.record({"file.tensors_used", static_cast<double>(total - used.size()), 0, unused.empty(),
                std::to_string(used.size()) + "/" + std::to_string(total) + (unused.empty() ? "" : "; unused:" + unused.substr(0, 300))});

    json expected = json::object();
    if (std::filesystem::exists(ctx.dir() / "expected_keys.json")) expected = io::read_json(ctx.dir() / "expected_keys.json");

    for (const auto& [comp, spec] : fx["components"].items()) {
      const auto folder = ctx.dir() / spec["folder"].get<std::string>();
      const std::string prefix = spec.value("file_prefix", "");
      if (!ck.components.count(comp)) {
        ctx.fail(comp, "component not produced by the loader");
        continue;
      }
      const auto& got = ck.components.at(comp);
      auto ref = io::load_safetensors(folder / spec.value("weights", "diffusion_pytorch_model.safetensors"));

      // Names: exactly the reference state_dict.
      std::string missing, extra;
      for (const auto& [n, t] : ref)
        if (!got.count(n)) missing += " " + n;
      for (const auto& [n, t] : got)
        if (!ref.count(n)) extra += " " + n;
      const bool names_ok = missing.empty() && extra.empty();
      ctx.record({comp + ".names", names_ok ? 0.0 : 1.0, 0, names_ok,
                  std::to_string(got.size()) + " tensors" + (missing.empty() ? "" : "; missing:" + missing.substr(0, 300)) +
                      (extra.empty() ? "" : "; unexpected:" + extra.substr(0, 300))});

      // Values: bit for bit against reference.half().float().
      double max_err = 0;
      size_t unequal = 0, compared = 0;
      std::string first_bad;
      for (const auto& [n, r] : ref) {
        auto it = got.find(n);
        if (it == got.end()) continue;
        ++compared;
        auto want = r.to(torch::kHalf).to(torch::kFloat);
        auto have = it->second.to(torch::kFloat);
        if (have.sizes() != want.sizes()) {
          ++unequal;
          max_err = std::max(max_err, 1e30);
          if (first_bad.empty()) first_bad = n + " (shape)";
          continue;
        }
        if (!torch::equal(have, want)) {
          ++unequal;
          max_err = std::max(max_err, (have - want).abs().max().item<double>());
          if (first_bad.empty()) first_bad = n;
        }
      }
      ctx.record({comp + ".tensors", max_err, 0, unequal == 0 && compared == ref.size(),
                  std::to_string(compared - unequal) + "/" + std::to_string(ref.size()) + " bit-identical" +
                      (first_bad.empty() ? "" : "; first difference: " + first_bad)});

      // The mapping of each file key, as expected_keys.json states it.
      if (expected.contains("keys") && expected["keys"].contains(comp)) {
        std::map<std::string, std::set<std::string>> mine;  // file key without prefix → diffusers names
        for (const auto& [n, s] : ck.plan.sources.at(comp)) mine[s.file_key.substr(prefix.size())].insert(n);
        std::string bad;
        size_t n_keys = 0;
        for (const auto& [fk, names] : expected["keys"][comp].items()) {
          ++n_keys;
          std::set<std::string> want;
          if (names.is_array()) for (const auto& x : names) want.insert(x.get<std::string>());
          else want.insert(names.get<std::string>());
          if (mine[fk] != want && bad.size() < 300) bad += " " + fk;
        }
        const bool ok = bad.empty() && mine.size() == n_keys;
        ctx.record({comp + ".expected_keys", ok ? 0.0 : 1.0, 0, ok,
                    std::to_string(n_keys) + " file keys" + (bad.empty() ? "" : "; mapped differently:" + bad)});
      }

      if (std::filesystem::exists(folder / "config.json"))
        compare_config(ctx, comp, ck.plan.configs.at(comp), io::read_json(folder / "config.json"));
    }
  };
}

}  // namespace clipgen::parity
